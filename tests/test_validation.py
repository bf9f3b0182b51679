"""Great Expectations validation: a generated dataset passes; each corruption is caught and named.

The battery corrupts one copy of a small generated dataset per case and checks that validation
fails with the expected expectation (or file error) named, the field and an example row.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tracealign.synthesis import build_dataset
from tracealign.validation import validate_dataset

Corruption = Callable[[Path], None]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "data"
    build_dataset(out, seed=7, n_train=160, n_eval=40, n_eval_ood=20, n_cgpo=8, workers=1)
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )


def _edit(relative: str, change: Callable[[list[dict]], None]) -> Corruption:
    def apply(root: Path) -> None:
        path = root / relative
        rows = _rows(path)
        change(rows)
        _write(path, rows)

    return apply


def _drop_field(rows):
    del rows[3]["prompt"]


def _null(rows):
    rows[2]["chosen"] = None


def _duplicate_prompt(rows):
    rows[5]["prompt"] = rows[4]["prompt"]


def _swap(rows):
    rows[1]["chosen"], rows[1]["rejected"] = rows[1]["rejected"], rows[1]["chosen"]


def _too_many(rows):
    row = rows[0]
    row["constraints"] = (row["constraints"] * 16)[:16]


def _unknown_dimension(rows):
    rows[6]["constraints"][0]["dimension"] = "telepathy"


def _unknown_type(rows):
    rows[6]["constraints"][0]["type"] = "vibes"


def _y1_satisfies_x2(rows):
    # x2 := x1 (with its constraints): y1 then satisfies x2 as well
    rows[0]["x2"], rows[0]["x2_constraints"] = rows[0]["x1"], rows[0]["x1_constraints"]


def _unknown_verifier(rows):
    rows[4]["constraints"][0]["verifier"] = "format.telepathic_markup"


def _flip_relation(rows):
    rows[2]["relations"]["y1_satisfies_x1"] = not rows[2]["relations"]["y1_satisfies_x1"]


def _wrong_violations(rows):
    rows[0]["rejected_violations"] = ["format.nonexistent"]


def _empty_response(rows):
    rows[0]["response"] = ""


def _leak(root: Path) -> None:
    train = _rows(root / "train" / "instructions.jsonl")
    path = root / "eval" / "instructions.jsonl"
    rows = _rows(path)
    rows[0]["prompt"] = "  " + train[10]["prompt"].upper() + " "  # normalisation must see it
    _write(path, rows)


def _truncate_last_line(root: Path) -> None:
    path = root / "train" / "iopo.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])


def _invalid_utf8(root: Path) -> None:
    path = root / "eval" / "sft.jsonl"
    data = path.read_bytes()
    cut = data.index(b"\n") + 1
    path.write_bytes(data[:cut] + b'{"id": "\xff\xfe"}\n' + data[cut:])


def _empty_file(root: Path) -> None:
    (root / "train" / "dpo.jsonl").write_bytes(b"")


def _manifest_disagrees(root: Path) -> None:
    path = root / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    manifest["counts"]["train"]["dpo"] += 3
    path.write_text(json.dumps(manifest), encoding="utf-8")


CASES: dict[str, tuple[Corruption, str, str]] = {
    # name: (corruption, suite or file, expectation type or file error text)
    "dropped field": (
        _edit("train/dpo.jsonl", _drop_field),
        "train.dpo",
        "expect_column_values_to_not_be_null",
    ),
    "null": (_edit("train/dpo.jsonl", _null), "train.dpo", "expect_column_values_to_not_be_null"),
    "duplicated prompt": (
        _edit("train/instructions.jsonl", _duplicate_prompt),
        "train.instructions",
        "expect_column_values_to_be_unique",
    ),
    "train/eval leakage": (_leak, "eval.instructions", "expect_column_values_to_be_in_set"),
    "chosen and rejected swapped": (
        _edit("train/dpo.jsonl", _swap),
        "train.dpo",
        "expect_column_values_to_be_in_set",
    ),
    "out-of-range count": (
        _edit("train/instructions.jsonl", _too_many),
        "train.instructions",
        "expect_column_values_to_be_between",
    ),
    "unknown dimension": (
        _edit("train/instructions.jsonl", _unknown_dimension),
        "train.constraints",
        "expect_column_values_to_be_in_set",
    ),
    "unknown type": (
        _edit("eval/instructions.jsonl", _unknown_type),
        "eval.constraints",
        "expect_column_values_to_be_in_set",
    ),
    "y1 also satisfies x2": (
        _edit("train/iopo.jsonl", _y1_satisfies_x2),
        "train.iopo",
        "expect_column_values_to_be_in_set",
    ),
    "unknown verifier": (
        _edit("train/dpo.jsonl", _unknown_verifier),
        "train.dpo",
        "expect_column_values_to_be_in_set",
    ),
    "recorded relation wrong": (
        _edit("train/iopo.jsonl", _flip_relation),
        "train.iopo",
        "expect_column_values_to_be_in_set",
    ),
    "recorded violations wrong": (
        _edit("train/dpo.jsonl", _wrong_violations),
        "train.dpo",
        "expect_column_values_to_be_in_set",
    ),
    "empty response": (
        _edit("train/sft.jsonl", _empty_response),
        "train.sft",
        "expect_column_values_to_be_between",
    ),
    "truncated last line": (_truncate_last_line, "train/iopo.jsonl", "truncated line"),
    "invalid UTF-8": (_invalid_utf8, "eval/sft.jsonl", "line 2: not valid UTF-8"),
    "empty file": (_empty_file, "train/dpo.jsonl", "file is empty"),
    "manifest disagrees": (_manifest_disagrees, "train.dpo", "expect_table_row_count_to_equal"),
}

EXPECTED_DESCRIPTION = {
    "train/eval leakage": "no prompt is shared with train",
    "chosen and rejected swapped": "chosen passes every rule verifier",
    "unknown dimension": "dimension label is one of the 26",
    "unknown type": "type label is one of the 5",
    "y1 also satisfies x2": "y1 fails at least one rule verifier of x2",
    "recorded relation wrong": "the recorded relations match verification",
    "recorded violations wrong": "rejected_violations lists exactly the kinds rejected fails",
}


def test_generated_dataset_is_valid(dataset, tmp_path):
    report = validate_dataset(dataset, tmp_path / "report", workers=1)
    assert report.success, "\n".join(f.line() for f in report.failures) + str(report.file_errors)
    assert report.expectations > 100
    assert report.verifications > 0
    assert (tmp_path / "report" / "data_docs" / "index.html").is_file()
    results = json.loads((tmp_path / "report" / "results.json").read_text("utf-8"))
    assert results["summary"]["success"] is True


@pytest.mark.parametrize("name", list(CASES))
def test_corruption_is_caught(name, dataset, tmp_path):
    corrupt, where, what = CASES[name]
    copy = tmp_path / "data"
    shutil.copytree(dataset, copy)
    corrupt(copy)
    split = where.split("/")[0] if where.endswith(".jsonl") else where.split(".")[0]
    report = validate_dataset(
        copy, tmp_path / "report", workers=1, data_docs=False, splits=(split,)
    )
    assert not report.success
    if not where.endswith(".jsonl"):  # a failed expectation in a suite
        hits = [f for f in report.failures if f.suite == where and f.expectation == what]
        assert hits, [f.line() for f in report.failures]
        if name in EXPECTED_DESCRIPTION:
            assert any(EXPECTED_DESCRIPTION[name] in f.description for f in hits), hits
        if hits[0].failing_rows is not None:
            assert hits[0].examples, hits[0]
    else:  # an unreadable file, reported with its path and line
        assert any(where in error and what in error for error in report.file_errors), (
            report.file_errors
        )


def test_cli_reports_and_nothing_downstream_runs(dataset, tmp_path):
    """A DVC pipeline whose consumer stage depends on validation never runs the consumer."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(dataset, repo / "data")
    _edit("train/dpo.jsonl", _swap)(repo / "data")
    bin_dir = Path(sys.executable).parent
    env_path = f"{bin_dir}:/usr/bin:/bin"
    (repo / "dvc.yaml").write_text(
        "stages:\n"
        "  validate:\n"
        "    cmd: tracealign validate data --report reports/validation --no-docs\n"
        "    deps: [data]\n"
        "    outs: [reports/validation]\n"
        "  consumer:\n"
        "    cmd: mkdir -p out && echo trained > out/model.txt\n"
        "    deps: [reports/validation]\n"
        "    outs: [out]\n",
        encoding="utf-8",
    )

    def run(*cmd):
        return subprocess.run(
            cmd,
            cwd=repo,
            capture_output=True,
            text=True,
            env={"PATH": env_path, "HOME": str(tmp_path)},
        )

    assert run("git", "init", "-q").returncode == 0
    assert run(str(bin_dir / "dvc"), "init", "-q").returncode == 0
    done = run(str(bin_dir / "dvc"), "repro")
    assert done.returncode != 0
    assert "chosen passes every rule verifier" in done.stdout + done.stderr
    assert not (repo / "out" / "model.txt").exists()

    assert "Traceback" not in done.stderr
    assert "train.dpo" in done.stderr and "[chosen]" in done.stderr


def test_required_types_follow_the_manifest_and_a_full_training_split():
    from tracealign.validation.runner import _required_types

    assert _required_types("eval", 12, {"content", "format"}) == {"content", "format"}
    assert _required_types("train", 48, {"content"}) == {"content"}
    assert _required_types("train", 2000, set()) == {
        "content",
        "situation",
        "style",
        "format",
        "example",
    }


def _scan(data: Path, workers: int):
    from tracealign.taxonomy import DIMENSIONS, ConstraintType
    from tracealign.validation.columns import RowContext
    from tracealign.validation.scan import scan_dataset

    ctx = RowContext(
        frozenset(dimension.id for dimension in DIMENSIONS),
        frozenset(kind.value for kind in ConstraintType),
    )
    return scan_dataset(data, ctx, workers=workers)


@pytest.fixture
def small_shards(monkeypatch):
    """Force the process pool and shards of a few KiB, so a small dataset spans many."""
    from tracealign.validation import scan

    monkeypatch.setattr(scan, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(scan, "SHARD_BYTES", (4096, 4096))


def test_sharded_parallel_scan_equals_a_single_pass(dataset, small_shards):
    import pandas as pd

    single, sharded = _scan(dataset, 1), _scan(dataset, 2)
    assert not single.problems and not sharded.problems
    assert single.frames.keys() == sharded.frames.keys()
    for key, frame in single.frames.items():
        pd.testing.assert_frame_equal(frame, sharded.frames[key], obj=str(key))
        assert frame["row"].tolist() == list(range(1, len(frame) + 1))
    for split, frame in single.constraints.items():
        pd.testing.assert_frame_equal(frame, sharded.constraints[split], obj=split)
    assert (single.claims, single.calls) == (sharded.claims, sharded.calls)

    # each distinct (constraint, response) check runs once: SFT responses and IOPO y1 are the
    # DPO chosen responses, and x2 shares most constraints with x1
    weights = {  # (artifact, column): responses checked per row against that many constraints
        ("instructions", "n_constraints"): 1,  # each instruction's SFT response
        ("dpo", "n_constraints"): 2,  # chosen and rejected
        ("iopo", "n_constraints_x1"): 2,  # y1 and y2 against x1
        ("iopo", "n_constraints_x2"): 2,  # y1 and y2 against x2
    }
    full = 0
    for (_, artifact), frame in single.frames.items():
        for (weighted, column), weight in weights.items():
            if artifact == weighted:
                full += int(frame[column].fillna(0).sum()) * weight
    assert 0 < single.calls < 0.6 * full, (single.calls, full)


def test_a_bad_line_deep_in_a_sharded_file_is_named_with_its_line(dataset, tmp_path, small_shards):
    copy = tmp_path / "data"
    shutil.copytree(dataset, copy)
    path = copy / "train" / "iopo.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[99] = lines[99][: len(lines[99]) // 2]  # line 100 cut in half
    path.write_bytes(b"\n".join(lines))
    scanned = _scan(copy, 2)
    assert len(scanned.problems) == 1
    assert str(scanned.problems[0]).startswith(f"{path}, line 100: not valid JSON")
    assert ("train", "iopo") not in scanned.frames  # an unreadable file contributes no rows


def test_known_verdicts_are_reused_only_for_identical_text():
    from tracealign.validation.rules import RuleChecks, digest

    constraints = [{"kind": "exclusion.no_commas", "verifier": "exclusion.no_commas", "params": {}}]
    checks = RuleChecks()
    assert checks.row(constraints, "no commas here", share=True) == (True, ())
    shared = RuleChecks(known=checks.learned)
    assert shared.row(constraints, "no commas here", share=True) == (True, ())
    assert shared.calls == 0  # found, not recomputed
    assert shared.row(constraints, "one, two", share=True) == (False, ("exclusion.no_commas",))
    assert shared.calls == 1  # a different response is verified afresh
    assert digest(b"[]", "a") != digest(b"[]", "b")
