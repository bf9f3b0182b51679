"""Run the suites over a dataset directory with Great Expectations and report.

Writes, beside the data (default `<data>.validation/`): `results.json` (every suite's Great
Expectations result plus a summary) and Data Docs HTML (`data_docs/index.html`). Returns a
report whose failures name the expectation, the field, how many rows fail and example row ids.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from tracealign.io import DataFileError, write_json
from tracealign.schemas import SPLITS
from tracealign.taxonomy import DIMENSIONS, ConstraintType
from tracealign.validation import manifest as manifest_bounds
from tracealign.validation.columns import RowContext
from tracealign.validation.scan import scan_dataset
from tracealign.validation.suites import constraint_suite, row_suite

EXAMPLES = 5


@dataclass
class Failure:
    suite: str
    expectation: str
    description: str
    field: str
    failing_rows: int | None
    examples: list[str]
    observed: Any = None

    def line(self) -> str:
        rows = f"{self.failing_rows} rows" if self.failing_rows is not None else "table"
        extra = f", e.g. {', '.join(self.examples)}" if self.examples else ""
        seen = f" (observed {self.observed})" if self.observed is not None else ""
        return (
            f"{self.suite}: {self.expectation} [{self.field}] {self.description}: "
            f"{rows}{extra}{seen}"
        )


@dataclass
class ValidationReport:
    data_dir: Path
    report_dir: Path
    success: bool
    failures: list[Failure] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    expectations: int = 0
    verifications: int = 0
    """Responses checked against a prompt's constraints by the rule verifiers."""
    verifier_calls: int = 0
    """Single-constraint verifier calls made for them (each distinct check once)."""
    seconds: float = 0.0

    @property
    def docs_index(self) -> Path:
        return self.report_dir / "data_docs" / "index.html"

    @property
    def results_path(self) -> Path:
        return self.report_dir / "results.json"

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["data_dir"], out["report_dir"] = str(self.data_dir), str(self.report_dir)
        return out


def default_report_dir(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}.validation"


def validate_dataset(
    data_dir: Path | str,
    report_dir: Path | str | None = None,
    *,
    workers: int | None = None,
    share_tolerance: float = 0.02,
    data_docs: bool = True,
    splits: tuple[str, ...] = SPLITS,
) -> ValidationReport:
    """Validate every artifact of a generated dataset directory.

    `splits` limits the suites to some splits (the train prompts are still read for the
    leakage check of the evaluation splits).
    """
    started = time.perf_counter()
    data_dir = Path(data_dir)
    report_dir = Path(report_dir) if report_dir else default_report_dir(data_dir)
    report = ValidationReport(data_dir=data_dir, report_dir=report_dir, success=False)
    if not data_dir.is_dir():
        raise DataFileError(data_dir, "dataset directory not found")

    manifest, manifest_error = manifest_bounds.read(data_dir / "manifest.json")
    if manifest_error:
        report.file_errors.append(manifest_error)
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; expected some of {SPLITS}")
    ctx = RowContext(
        dimensions=frozenset(dimension.id for dimension in DIMENSIONS),
        types=frozenset(kind.value for kind in ConstraintType),
    )
    scanned = scan_dataset(
        data_dir,
        ctx,
        splits=tuple(splits),
        expected_empty=manifest_bounds.empty(manifest),
        workers=workers,
    )
    report.file_errors.extend(str(error) for error in scanned.problems)
    frames = scanned.frames
    for (split, artifact), frame in frames.items():
        report.rows[f"{split}/{artifact}"] = len(frame)
    train = frames.get(("train", "instructions"))
    train_keys = set(train["prompt_key"].dropna()) if train is not None else set()
    for (split, artifact), frame in frames.items():
        if artifact == "instructions" and split != "train":
            frame["shared_with_train"] = frame["prompt_key"].isin(train_keys)

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        ),
    )
    if data_docs:
        context.add_data_docs_site(
            site_name="tracealign",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str((report_dir / "data_docs").resolve()),
                },
            },
        )
    source = context.data_sources.add_pandas("tracealign")
    results: dict[str, Any] = {}

    def run(name: str, frame: pd.DataFrame, expectations: list) -> None:
        asset = source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch, suite=suite, name=name)
        )
        result = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": ["row_id"],
                "partial_unexpected_count": EXAMPLES,
            },
        )
        report.expectations += len(result.results)
        results[name] = result.to_json_dict()
        for outcome in result.results:
            if not outcome.success:
                report.failures.append(_failure(name, outcome))

    for (split, artifact), frame in frames.items():
        if split not in splits:
            continue  # read only for the leakage check
        bounds = manifest_bounds.bounds(manifest, split, artifact, share_tolerance)
        run(f"{split}.{artifact}", frame, row_suite(split, artifact, bounds))
        if artifact == "instructions":
            constraints = scanned.constraints[split]
            for type_name in ctx.types:
                constraints[f"is_{type_name}"] = (constraints["type"] == type_name).astype(float)
            run(
                f"{split}.constraints",
                constraints,
                constraint_suite(
                    bounds,
                    ctx.dimensions,
                    ctx.types,
                    required_types=_required_types(
                        split, len(frame), manifest_bounds.types_listed(manifest, split)
                    ),
                ),
            )

    report.verifications = scanned.claims
    report.verifier_calls = scanned.calls
    report.success = not report.failures and not report.file_errors
    report.seconds = round(time.perf_counter() - started, 3)
    if data_docs:
        context.build_data_docs()
    else:  # HTML of an earlier run beside these results would describe other data
        shutil.rmtree(report.docs_index.parent, ignore_errors=True)
    write_json(report.results_path, {"summary": report.summary(), "suites": results})
    return report


ALL_TYPES_FROM = 500
"""A training split of at least this many instructions must hold every constraint type; smaller
samples (the micro profile) may legitimately miss a rare one, style at about 1% of constraints."""


def _required_types(split: str, rows: int, listed: set[str]) -> set[str]:
    """The types the split must contain: those its manifest lists (data and manifest agree) and,
    for a full-size training split, all five."""
    required = set(listed)
    if split == "train" and rows >= ALL_TYPES_FROM:
        required |= {kind.value for kind in ConstraintType}
    return required


def _failure(suite: str, outcome: Any) -> Failure:
    config = outcome.expectation_config
    result = outcome.result or {}
    examples = [
        str(item.get("row_id"))
        for item in result.get("partial_unexpected_index_list") or []
        if isinstance(item, dict)
    ][:EXAMPLES]
    exception = (outcome.exception_info or {}).get("exception_message")
    observed = result.get("observed_value")
    if exception:
        observed = exception.splitlines()[0][:200]
    return Failure(
        suite=suite,
        expectation=config.type,
        description=config.description or config.type,
        field=(config.meta or {}).get("field", config.kwargs.get("column", "")),
        failing_rows=result.get("unexpected_count"),
        examples=examples,
        observed=_plain(observed),
    )


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
