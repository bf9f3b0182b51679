"""One dataset row -> the compact column values the suites check.

Great Expectations checks columns; what it cannot compute itself (does this response pass the
registry's rule verifiers for these constraints? how many constraints, which labels?) is
computed here, once per row, where the row is read. Only what the suites need leaves this module
(booleans, counts, lengths, ids, short labels, prompt hashes), never the texts, so a paper-scale
dataset never sits in memory as Python objects.

Conventions for a field the suites only need to be present: its column holds True, or None when
the field is missing or null (which `expect_column_values_to_not_be_null` reports). Short labels
(`split`, `operation`, `task`, ...) keep their value. Text lengths are `<field>_chars`, -1 when
the field is not a string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracealign.schemas import ARTIFACTS
from tracealign.trace_format import prompt_key
from tracealign.validation.rules import RuleChecks

LABEL_FIELDS = frozenset({"split", "operation", "task", "source", "lang"})
"""Fields whose values the suites check against a set: kept as (short) values."""

LABEL_CHARS = 80

CONSTRAINT_LABELS = "constraint_labels"
"""Instructions: per row, (dimension, type, kind) of each constraint (the constraint suite)."""
CONSTRAINTS_JSON = "constraints_json"
"""Instructions: per row, the serialised constraints (for the SFT rows that name the row)."""


@dataclass
class RowContext:
    """What a row's columns depend on beyond the row itself."""

    dimensions: frozenset[str]
    types: frozenset[str]
    instruction_constraints: dict[tuple[str, str], bytes] = field(default_factory=dict)
    """(split, instruction id) -> serialised constraints (b"" when the row has none), for the
    SFT rows of the split."""


def _label(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value if value is None or len(value) <= LABEL_CHARS else value[:LABEL_CHARS] + "…"
    return repr(value)[:LABEL_CHARS]


def _chars(value: Any) -> int | None:
    if value is None:
        return None  # the not-null expectation names it
    return len(value) if isinstance(value, str) else -1


def _count(raw: Any) -> int | None:
    return len(raw) if isinstance(raw, list) else None


def _labels_known(raw: Any, key: str, known: frozenset[str]) -> bool:
    if not isinstance(raw, list) or not raw:
        return False
    return all(isinstance(item, dict) and item.get(key) in known for item in raw)


def _differs(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip() != b.strip()


def base_values(artifact: str, row: dict[str, Any]) -> dict[str, Any]:
    """Presence (or label value) of every schema field, and the row's id when it is a string."""
    values: dict[str, Any] = {}
    for name in ARTIFACTS[artifact].model_fields:
        value = row.get(name)
        values[name] = _label(value) if name in LABEL_FIELDS else (None if value is None else True)
    row_id = row.get("id")
    values["row_id"] = row_id if isinstance(row_id, str) else None
    return values


def _instruction(row: dict[str, Any], split: str, ctx: RowContext, checks: RuleChecks) -> dict:
    raw = row.get("constraints")
    prompt = row.get("prompt")
    labels = None
    if isinstance(raw, list):
        labels = [
            tuple(_label(item.get(key)) for key in ("dimension", "type", "kind"))
            if isinstance(item, dict)
            else (None, None, None)
            for item in raw
        ]
    return {
        "n_constraints": _count(raw),
        "dimensions_in_taxonomy": _labels_known(raw, "dimension", ctx.dimensions),
        "types_in_taxonomy": _labels_known(raw, "type", ctx.types),
        "prompt_key": prompt_key(prompt) if isinstance(prompt, str) else None,
        "prompt_chars": _chars(prompt),
        CONSTRAINT_LABELS: labels,
        CONSTRAINTS_JSON: orjson.dumps(raw) if isinstance(raw, list) else None,
    }


def _sft(row: dict[str, Any], split: str, ctx: RowContext, checks: RuleChecks) -> dict:
    instruction_id = row.get("instruction_id")
    serialised = (
        ctx.instruction_constraints.get((split, instruction_id))
        if isinstance(instruction_id, str)
        else None
    )
    response = row.get("response")
    ok, _ = checks.row(
        orjson.loads(serialised) if serialised else None,
        response,
        serialised=serialised,
        share=True,
    )
    return {
        "known_instruction": serialised is not None,
        "response_satisfies_prompt": ok is True,
        "response_chars": _chars(response),
    }


def _dpo(row: dict[str, Any], split: str, ctx: RowContext, checks: RuleChecks) -> dict:
    raw = row.get("constraints")
    chosen, rejected = row.get("chosen"), row.get("rejected")
    serialised = orjson.dumps(raw) if isinstance(raw, list) else None
    chosen_ok, _ = checks.row(raw, chosen, serialised=serialised, share=True)
    rejected_ok, failing = checks.row(raw, rejected, serialised=serialised)
    recorded = row.get("rejected_violations")
    return {
        "n_constraints": _count(raw),
        "chosen_differs_from_rejected": _differs(chosen, rejected),
        "chosen_satisfies_prompt": chosen_ok is True,
        "rejected_violates_prompt": rejected_ok is False,
        "recorded_violations_hold": isinstance(recorded, list)
        and rejected_ok is False
        and {str(kind) for kind in recorded} == set(failing),
        "chosen_chars": _chars(chosen),
        "rejected_chars": _chars(rejected),
    }


IOPO_RELATIONS = {
    "y1_satisfies_x1": ("y1", "x1"),
    "y1_satisfies_x2": ("y1", "x2"),
    "y2_satisfies_x2": ("y2", "x2"),
    "y2_satisfies_x1": ("y2", "x1"),
}


def _iopo(row: dict[str, Any], split: str, ctx: RowContext, checks: RuleChecks) -> dict:
    memo: dict[str, dict[bytes, bool | None]] = {"y1": {}, "y2": {}}
    verdict: dict[str, bool | None] = {}
    for name, (response, prompt) in IOPO_RELATIONS.items():
        ok, _ = checks.row(
            row.get(f"{prompt}_constraints"),
            row.get(response),
            memo[response],
            share=name == "y1_satisfies_x1",  # y1 is the SFT response / DPO chosen of x1
        )
        verdict[name] = ok
    relations = row.get("relations")
    x1, x2 = row.get("x1"), row.get("x2")
    return {
        "y1_satisfies_x1": verdict["y1_satisfies_x1"] is True,
        "y1_violates_x2": verdict["y1_satisfies_x2"] is False,
        "y2_satisfies_x2": verdict["y2_satisfies_x2"] is True,
        "recorded_relations_hold": isinstance(relations, dict)
        and all(relations.get(name) is verdict[name] for name in IOPO_RELATIONS),
        "x1_differs_from_x2": isinstance(x1, str) and x1 != x2,
        "n_constraints_x1": _count(row.get("x1_constraints")),
        "n_constraints_x2": _count(row.get("x2_constraints")),
        "y1_chars": _chars(row.get("y1")),
        "y2_chars": _chars(row.get("y2")),
    }


def _cgpo(row: dict[str, Any], split: str, ctx: RowContext, checks: RuleChecks) -> dict:
    """CGPO task rows: the metadata each task's judges need, and the golden response's rule
    checks. Code goldens are checked for a code block here; running their unit tests is the
    code judge's job (sandboxed), not the validator's."""
    task, golden = row.get("task"), row.get("golden")
    complete = golden_ok = False
    if task == "instruction_following":
        constraints = row.get("constraints")
        complete = _count(constraints) not in (None, 0)
        golden_ok = checks.row(constraints, golden)[0] is True
    elif task == "math":
        answer = row.get("answer")
        complete = isinstance(answer, str) and bool(answer.strip())
        golden_ok = (
            complete
            and isinstance(golden, str)
            and golden.rstrip().endswith(f"The final answer is {answer}.")
        )
    elif task == "code":
        tests = row.get("tests")
        complete = isinstance(tests, str) and bool(tests.strip())
        golden_ok = isinstance(golden, str) and "```python" in golden
    return {
        "task_metadata_complete": complete,
        "golden_satisfies_rules": golden_ok,
        "prompt_chars": _chars(row.get("prompt")),
    }


ArtifactColumns = Callable[[dict[str, Any], str, RowContext, RuleChecks], dict[str, Any]]

ARTIFACT_COLUMNS: dict[str, ArtifactColumns] = {
    "instructions": _instruction,
    "sft": _sft,
    "dpo": _dpo,
    "iopo": _iopo,
    "cgpo": _cgpo,
}


def row_values(
    artifact: str, row: dict[str, Any], split: str, ctx: RowContext, checks: RuleChecks
) -> dict[str, Any]:
    """Every column value of one row of `<split>/<artifact>.jsonl`."""
    values = base_values(artifact, row)
    values.update(ARTIFACT_COLUMNS[artifact](row, split, ctx, checks))
    return values
