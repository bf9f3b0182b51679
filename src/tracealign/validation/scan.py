"""Read a dataset's JSON-lines files into compact column frames, on every core.

Each file is cut into shards at line boundaries; a worker reads its shard, parses and checks each
row (`columns.row_values`) and returns only compact columns, so the driver never holds the texts.
Rows keep their line numbers (a worker counts its shard's lines; the driver adds the lines
before it), and a line that cannot be read is reported with its file and line number, as if the
file had been read from the top; such a file contributes no rows.

Two phases, because SFT rows need their instruction's constraints, and an IOPO y1 and an SFT
response are usually the DPO chosen response of the same instruction, verified once: phase one
reads instructions, DPO pairs and CGPO tasks; phase two, SFT rows and IOPO groups, with the
instructions' constraints and the DPO verdicts inherited by the forked workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tracealign.io import DataFileError, parse_json_line
from tracealign.schemas import SPLITS
from tracealign.validation.columns import (
    CONSTRAINT_LABELS,
    CONSTRAINTS_JSON,
    RowContext,
    row_values,
)
from tracealign.validation.rules import ItemVerdicts, RuleChecks

PHASES: tuple[tuple[str, ...], ...] = (("instructions", "dpo", "cgpo"), ("sft", "iopo"))
PARALLEL_BYTES = 8 * 2**20
"""Below this many bytes in a phase, a process pool costs more than it saves."""
SHARD_BYTES = (2 * 2**20, 64 * 2**20)
"""Smallest and largest shard; in between, about six shards per worker for load balance."""


@dataclass(frozen=True)
class Shard:
    split: str
    artifact: str
    path: Path
    start: int
    stop: int


@dataclass
class ShardResult:
    columns: dict[str, list[Any]]
    relative_lines: list[int]
    lines: int
    error: tuple[int, str] | None
    learned: dict[bytes, ItemVerdicts]
    claims: int
    calls: int


@dataclass
class ScanResult:
    frames: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    """(split, artifact) -> one row per line: `row` (line number), `row_id`, compact columns."""
    constraints: dict[str, pd.DataFrame] = field(default_factory=dict)
    """split -> one row per constraint of its instructions: row_id, dimension, type, kind."""
    problems: list[DataFileError] = field(default_factory=list)
    claims: int = 0
    """Responses checked against a prompt's constraints."""
    calls: int = 0
    """Rule verifier calls made for them (fewer: repeated checks are computed once)."""


_EMPTY = RowContext(frozenset(), frozenset())
_CONTEXT: RowContext | None = None
_KNOWN: dict[bytes, ItemVerdicts] = {}
"""The state of a phase, inherited by its forked workers (never pickled)."""


def _read_shard(shard: Shard) -> ShardResult:
    assert _CONTEXT is not None
    checks = RuleChecks(known=_KNOWN)
    with shard.path.open("rb") as handle:
        handle.seek(shard.start)
        data = handle.read(shard.stop - shard.start)
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the shard ends with a newline
    complete = len(lines)
    if tail:
        lines.append(tail)
    columns: dict[str, list[Any]] = {}
    relative: list[int] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = parse_json_line(shard.path, number, raw, terminated=number <= complete)
        except DataFileError as exc:
            return ShardResult({}, [], len(lines), (number, exc.reason), {}, 0, 0)
        relative.append(number)
        for name, value in row_values(shard.artifact, row, shard.split, _CONTEXT, checks).items():
            columns.setdefault(name, []).append(value)
    return ShardResult(
        columns, relative, len(lines), None, checks.learned, checks.claims, checks.calls
    )


def _shards(path: Path, split: str, artifact: str, size: int) -> list[Shard]:
    total = path.stat().st_size
    cuts = [0]
    with path.open("rb") as handle:
        while cuts[-1] + size < total:
            handle.seek(cuts[-1] + size)
            handle.readline()
            cuts.append(handle.tell())
    if cuts[-1] < total:
        cuts.append(total)
    return [Shard(split, artifact, path, a, b) for a, b in zip(cuts, cuts[1:], strict=False)]


def _map(shards: list[Shard], workers: int) -> Iterable[ShardResult]:
    if workers <= 1 or len(shards) <= 1:
        return map(_read_shard, shards)
    pool = multiprocessing.get_context("fork").Pool(min(workers, len(shards)))
    try:
        return pool.map(_read_shard, shards, chunksize=1)
    finally:
        pool.close()
        pool.join()


def scan_dataset(
    data_dir: Path,
    ctx: RowContext,
    *,
    splits: Sequence[str] = SPLITS,
    expected_empty: frozenset[tuple[str, str]] = frozenset(),
    workers: int | None = None,
) -> ScanResult:
    """Read the artifacts of `splits` (and train's instructions, which the leakage check of the
    evaluation splits needs). An empty file is an error unless the manifest says the artifact
    has no rows (`expected_empty`, e.g. a split of size 0)."""
    global _CONTEXT, _KNOWN
    workers = workers or os.cpu_count() or 1
    result = ScanResult()
    known: dict[bytes, ItemVerdicts] = {}
    for phase in PHASES:
        files = _phase_files(data_dir, phase, splits, expected_empty, result.problems)
        total = sum(path.stat().st_size for _, _, path in files)
        parallel = workers > 1 and total >= PARALLEL_BYTES
        size = (
            min(max(total // (workers * 6), SHARD_BYTES[0]), SHARD_BYTES[1])
            if parallel
            else max(total, 1)
        )
        shards = [shard for split, art, path in files for shard in _shards(path, split, art, size)]
        _CONTEXT, _KNOWN = ctx, known
        try:
            results = list(_map(shards, workers if parallel else 1))
        finally:
            _CONTEXT, _KNOWN = None, {}
        for shard_result in results:
            known.update(shard_result.learned)
            result.claims += shard_result.claims
            result.calls += shard_result.calls
        for split, artifact, path in files:
            parts = [
                part for shard, part in zip(shards, results, strict=True) if shard.path == path
            ]
            frame = _assemble(split, artifact, path, parts, result.problems)
            if frame is None:
                continue
            if artifact == "instructions":
                _take_instruction_extras(split, frame, ctx, result)
            result.frames[(split, artifact)] = frame
    return result


def _phase_files(
    data_dir: Path,
    phase: tuple[str, ...],
    splits: Sequence[str],
    expected_empty: frozenset[tuple[str, str]],
    problems: list[DataFileError],
) -> list[tuple[str, str, Path]]:
    """(split, artifact, path) of the non-empty files a phase reads; a missing file, or an empty
    one the manifest does not expect, goes to `problems`."""
    files = []
    for split in SPLITS:
        for artifact in phase:
            if split not in splits and (split, artifact) != ("train", "instructions"):
                continue
            path = data_dir / split / f"{artifact}.jsonl"
            if not path.is_file():
                problems.append(DataFileError(path, "file not found"))
            elif path.stat().st_size:
                files.append((split, artifact, path))
            elif (split, artifact) not in expected_empty:
                problems.append(DataFileError(path, "file is empty"))
    return files


def _assemble(
    split: str,
    artifact: str,
    path: Path,
    parts: list[ShardResult],
    problems: list[DataFileError],
) -> pd.DataFrame | None:
    """One frame from a file's shards, with absolute line numbers; None (and the problem
    recorded) when a line could not be read."""
    offset = 0
    columns: dict[str, list[Any]] = {}
    rows: list[int] = []
    for part in parts:
        if part.error is not None:
            line, reason = part.error
            problems.append(DataFileError(path, reason, line=offset + line))
            return None
        rows.extend(offset + line for line in part.relative_lines)
        for name, values in part.columns.items():
            columns.setdefault(name, []).extend(values)
        offset += part.lines
    if not rows:  # only blank lines: the columns a row would have, empty
        columns = {name: [] for name in row_values(artifact, {}, split, _EMPTY, RuleChecks())}
    frame = pd.DataFrame(columns)
    frame["row"] = rows
    ids = columns.get("row_id") or [None] * len(rows)
    frame["row_id"] = [
        value if value is not None else f"line {line}"
        for value, line in zip(ids, rows, strict=True)
    ]
    return frame


def _take_instruction_extras(
    split: str, frame: pd.DataFrame, ctx: RowContext, result: ScanResult
) -> None:
    """Move the per-constraint labels into the constraint frame and the serialised constraints
    into the context the SFT rows of phase two read."""
    labels = frame.pop(CONSTRAINT_LABELS) if CONSTRAINT_LABELS in frame else []
    serialised = frame.pop(CONSTRAINTS_JSON) if CONSTRAINTS_JSON in frame else []
    records = [
        (f"{row_id}#{position}", *triple)
        for row_id, triples in zip(frame["row_id"], labels, strict=False)
        if triples
        for position, triple in enumerate(triples, start=1)
    ]
    result.constraints[split] = pd.DataFrame(
        records, columns=["row_id", "dimension", "type", "kind"]
    )
    for row_id, constraints in zip(frame["row_id"], serialised, strict=False):
        ctx.instruction_constraints[(split, row_id)] = constraints or b""
