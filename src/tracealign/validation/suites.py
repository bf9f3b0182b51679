"""The expectation suites: what a dataset must satisfy before any GPU hour is spent on it.

A suite is built per (split, artifact) because some bounds come from that split's manifest entry
(row counts, per-type shares). Every expectation carries a description a person can act on and
`meta.field`, the data field it is about, which the report prints next to example row ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import great_expectations as gx
from great_expectations.expectations import (
    ExpectColumnDistinctValuesToContainSet,
    ExpectColumnMeanToBeBetween,
    ExpectColumnValuesToBeBetween,
    ExpectColumnValuesToBeInSet,
    ExpectColumnValuesToBeUnique,
    ExpectColumnValuesToNotBeNull,
    ExpectTableRowCountToEqual,
)

from tracealign.schemas import ARTIFACTS
from tracealign.trace_format import MAX_CONSTRAINTS

PROMPT_CHARS = (10, 20_000)
RESPONSE_CHARS = (1, 20_000)


@dataclass(frozen=True)
class Bounds:
    """Manifest-derived bounds for one split; None where the manifest says nothing."""

    row_count: int | None = None
    type_shares: dict[str, float] | None = None
    share_tolerance: float = 0.02


def _meta(field: str) -> dict[str, Any]:
    return {"field": field}


def _all_true(column: str, description: str, field: str) -> gx.expectations.Expectation:
    return ExpectColumnValuesToBeInSet(
        column=column, value_set=[True], description=description, meta=_meta(field)
    )


def required_fields(artifact: str) -> list[str]:
    model = ARTIFACTS[artifact]
    return [name for name, info in model.model_fields.items() if info.is_required()]


def row_suite(split: str, artifact: str, bounds: Bounds) -> list[gx.expectations.Expectation]:
    """Expectations over the rows of `<split>/<artifact>.jsonl`."""
    out: list[gx.expectations.Expectation] = []
    for name in required_fields(artifact):
        out.append(
            ExpectColumnValuesToNotBeNull(
                column=name, description=f"field '{name}' is present and not null", meta=_meta(name)
            )
        )
    out.append(
        ExpectColumnValuesToBeUnique(
            column="row_id", description="ids are unique", meta=_meta("id")
        )
    )
    if bounds.row_count is not None:
        out.append(
            ExpectTableRowCountToEqual(
                value=bounds.row_count,
                description="row count equals the manifest's",
                meta=_meta("manifest.json"),
            )
        )
    out.extend(_ARTIFACT_SUITES[artifact](split))
    return out


def _length(field: str, bounds: tuple[int, int]) -> gx.expectations.Expectation:
    """Characters of a text field within bounds (-1, out of bounds, when it is not a string)."""
    return ExpectColumnValuesToBeBetween(
        column=f"{field}_chars",
        min_value=bounds[0],
        max_value=bounds[1],
        description=f"{field} length within bounds ({bounds[0]:,} to {bounds[1]:,} characters)",
        meta=_meta(field),
    )


def _response_lengths(*fields: str) -> list[gx.expectations.Expectation]:
    return [_length(field, RESPONSE_CHARS) for field in fields]


def _constraint_count(column: str, field: str, description: str) -> gx.expectations.Expectation:
    return ExpectColumnValuesToBeBetween(
        column=column,
        min_value=1,
        max_value=MAX_CONSTRAINTS,
        description=description,
        meta=_meta(field),
    )


def _instructions(split: str) -> list[gx.expectations.Expectation]:
    out = [
        _constraint_count("n_constraints", "constraints", f"1 to {MAX_CONSTRAINTS} constraints"),
        _all_true(
            "dimensions_in_taxonomy",
            "every dimension label is in the taxonomy",
            "constraints.dimension",
        ),
        _all_true("types_in_taxonomy", "every type label is in the taxonomy", "constraints.type"),
        ExpectColumnValuesToBeUnique(
            column="prompt_key",
            description="prompts are unique within the split",
            meta=_meta("prompt"),
        ),
        _length("prompt", PROMPT_CHARS),
        ExpectColumnValuesToBeInSet(
            column="split",
            value_set=[split],
            description="rows are labelled with their split",
            meta=_meta("split"),
        ),
    ]
    if split != "train":
        out.append(
            ExpectColumnValuesToBeInSet(
                column="shared_with_train",
                value_set=[False],
                description="no prompt is shared with train (normalised-text hash)",
                meta=_meta("prompt"),
            )
        )
    return out


def _sft(split: str) -> list[gx.expectations.Expectation]:
    return [
        _all_true(
            "known_instruction",
            "instruction_id names an instruction of the split",
            "instruction_id",
        ),
        _all_true(
            "response_satisfies_prompt", "the response passes every rule verifier", "response"
        ),
        *_response_lengths("response"),
    ]


def _dpo(split: str) -> list[gx.expectations.Expectation]:
    out = [
        _constraint_count("n_constraints", "constraints", f"1 to {MAX_CONSTRAINTS} constraints"),
        _all_true("chosen_differs_from_rejected", "chosen differs from rejected", "rejected"),
        _all_true("chosen_satisfies_prompt", "chosen passes every rule verifier", "chosen"),
        _all_true(
            "rejected_violates_prompt", "rejected fails at least one rule verifier", "rejected"
        ),
        _all_true(
            "recorded_violations_hold",
            "rejected_violations lists exactly the kinds rejected fails",
            "rejected_violations",
        ),
    ]
    return out + _response_lengths("chosen", "rejected")


def _iopo(split: str) -> list[gx.expectations.Expectation]:
    out = [
        ExpectColumnValuesToBeInSet(
            column="operation",
            value_set=["ADD", "DELETE", "REVISE"],
            description="operation is ADD, DELETE or REVISE",
            meta=_meta("operation"),
        ),
        _all_true("x1_differs_from_x2", "x2 differs from x1", "x2"),
        _all_true("y1_satisfies_x1", "y1 passes every rule verifier of x1", "y1"),
        _all_true("y1_violates_x2", "y1 fails at least one rule verifier of x2", "y1"),
        _all_true("y2_satisfies_x2", "y2 passes every rule verifier of x2", "y2"),
        _all_true(
            "recorded_relations_hold", "the recorded relations match verification", "relations"
        ),
    ]
    for prompt in ("x1", "x2"):
        out.append(
            _constraint_count(
                f"n_constraints_{prompt}",
                f"{prompt}_constraints",
                f"{prompt} has 1 to {MAX_CONSTRAINTS} constraints",
            )
        )
    return out + _response_lengths("y1", "y2")


def _cgpo(split: str) -> list[gx.expectations.Expectation]:
    return [
        ExpectColumnValuesToBeInSet(
            column="task",
            value_set=["instruction_following", "math", "code"],
            description="task is a known CGPO task",
            meta=_meta("task"),
        ),
        _all_true(
            "task_metadata_complete",
            "each task carries what its judges need (constraints, answer, or tests)",
            "task",
        ),
        _all_true(
            "golden_satisfies_rules", "the golden response passes the task's rule checks", "golden"
        ),
        _length("prompt", PROMPT_CHARS),
    ]


_ARTIFACT_SUITES = {
    "instructions": _instructions,
    "sft": _sft,
    "dpo": _dpo,
    "iopo": _iopo,
    "cgpo": _cgpo,
}


def constraint_suite(
    bounds: Bounds, dims: frozenset[str], types: frozenset[str], required_types: set[str]
) -> list[gx.expectations.Expectation]:
    """Expectations over one row per constraint of a split's instructions."""
    out: list[gx.expectations.Expectation] = [
        ExpectColumnValuesToBeInSet(
            column="dimension",
            value_set=sorted(dims),
            description="dimension label is one of the 26",
            meta=_meta("constraints.dimension"),
        ),
        ExpectColumnValuesToBeInSet(
            column="type",
            value_set=sorted(types),
            description="type label is one of the 5",
            meta=_meta("constraints.type"),
        ),
    ]
    if required_types:
        out.append(
            ExpectColumnDistinctValuesToContainSet(
                column="type",
                value_set=sorted(required_types),
                description="every constraint type the split must hold occurs "
                f"({', '.join(sorted(required_types))})",
                meta=_meta("constraints.type"),
            )
        )
    if bounds.type_shares:
        tol = bounds.share_tolerance
        for type_name, share in sorted(bounds.type_shares.items()):
            out.append(
                ExpectColumnMeanToBeBetween(
                    column=f"is_{type_name}",
                    min_value=max(0.0, share - tol),
                    max_value=min(1.0, share + tol),
                    description=f"share of {type_name} constraints within {tol:.0%} of the "
                    f"manifest's {share:.1%}",
                    meta=_meta("manifest.json"),
                )
            )
    return out
