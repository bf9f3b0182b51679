"""Reading and writing the JSON-lines artifacts, safely.

Readers name the file, the line and the field of every problem instead of raising a bare
traceback; writers never leave a half-written file or directory that looks complete (they write
to a temporary sibling and rename, which is atomic on one filesystem).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from tracealign.errors import UserFacingError

RowT = TypeVar("RowT", bound=BaseModel)


class DataFileError(UserFacingError, ValueError):
    """A data file that cannot be read as the expected rows; the message names file, line, field."""

    def __init__(
        self, path: Path | str, message: str, line: int | None = None, field: str | None = None
    ) -> None:
        self.path = Path(path)
        self.reason = message
        self.line = line
        self.field = field
        where = str(path) + (f", line {line}" if line is not None else "")
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


def iter_json_lines(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each line of a JSON-lines file.

    Raises DataFileError for a missing or empty file, bytes that are not UTF-8, a line that is
    not JSON (a truncated last line included) and a line that is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataFileError(path, "file is empty")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, parse_json_line(path, number, raw, raw.endswith(b"\n"))


def parse_json_line(path: Path, number: int, raw: bytes, terminated: bool) -> dict[str, Any]:
    """One line of a JSON-lines file as an object (`terminated`: a newline ended it, false for
    an unterminated last line); DataFileError naming the file and line when it is not one."""
    try:
        obj = orjson.loads(raw)  # fast path; errors are diagnosed below with the reason
    except orjson.JSONDecodeError:
        obj = _diagnose(path, number, raw, terminated)
    if not isinstance(obj, dict):
        raise DataFileError(path, f"expected a JSON object, got {type(obj).__name__}", line=number)
    return obj


def _diagnose(path: Path, number: int, raw: bytes, terminated: bool) -> Any:
    """Parse a line orjson refused: return it if the standard parser accepts it, else raise a
    DataFileError saying why (not UTF-8, truncated, not JSON)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(path, f"not valid UTF-8 (byte {exc.start})", line=number) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if not terminated:
            raise DataFileError(
                path, "truncated line (no newline, not valid JSON)", line=number
            ) from None
        raise DataFileError(
            path, f"not valid JSON ({exc.msg} at column {exc.colno})", line=number
        ) from None


def read_rows(path: Path | str, model: type[RowT]) -> list[RowT]:
    """Read a JSON-lines file into validated pydantic rows, naming the line and field on error."""
    rows: list[RowT] = []
    for number, obj in iter_json_lines(path):
        try:
            rows.append(model.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise DataFileError(path, first["msg"], line=number, field=field) from None
    return rows


def dumps_row(row: BaseModel | dict[str, Any]) -> str:
    """One JSON line, keys in schema order, non-ASCII kept readable, deterministic."""
    obj = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl(path: Path | str, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write rows atomically; return how many were written."""
    count = 0
    with atomic_file(path) as handle:
        for row in rows:
            handle.write(dumps_row(row))
            count += 1
    return count


def write_json(path: Path | str, obj: Any) -> None:
    """Write a JSON document atomically, pretty-printed with sorted keys (stable diffs)."""
    with atomic_file(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2, sort_keys=True)
        handle.write("\n")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_file(path: Path | str, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of `path` for writing; rename it over `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; others (a shared server) must read
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8", newline=None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Build a directory in a temporary sibling and swap it into place only when complete.

    An interrupted build leaves `path` as it was (absent, or the previous complete version) plus
    a hidden `.<name>.partial-*` directory that the next build removes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
