"""Guards for a stage's processes: they die with the process that started them, and one
training run at a time writes a method's output.

Why: a Prefect flow-run process starts `dvc`, which starts the stage (`python -m flows.train`).
When the worker and its flow-run process are SIGKILLed, nothing tells those children: they live
on as orphans, keep training into models/, and a retried flow run starts a second writer of the
same stage beside them. On Linux the kernel can tell them (prctl PR_SET_PDEATHSIG: a signal when
the parent exits, SIGKILL included); the stage lock turns any writer that still slips through
into a fast, named failure instead of two trainers on one checkpoint directory.

`python -m tracealign.stage_guards CMD [ARG...]` sets the parent-death signal and then execs
CMD (the setting survives exec), which is how tasks/dvc.py starts DVC without a `preexec_fn`
(unsafe in a process with threads, as a Prefect flow run is).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tracealign.errors import UserFacingError

_PR_SET_PDEATHSIG = 1


class StageBusyError(UserFacingError):
    """Another process holds the lock of the output this stage would write."""


def die_with_parent(signum: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Have the kernel send `signum` to this process when its parent exits (Linux only; returns
    False elsewhere). If the parent is already gone (this process was re-parented before the
    call), signal at once. `parent`: the pid the parent had, when the caller knows it.

    SIGTERM lets a Prefect flow end its run as Crashed and MLflow end its run before exiting.
    """
    if not sys.platform.startswith("linux"):
        return False
    expected = os.getppid() if parent is None else parent
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != expected:
        os.kill(os.getpid(), signum)
    return True


def with_lifeline(argv: Sequence[str], signum: int = signal.SIGTERM) -> list[str]:
    """`argv` wrapped so that the started process receives `signum` when the calling process
    exits (Linux; elsewhere `argv` as it is). Linux ties the signal to the thread that starts
    the process: start it from a thread that lives as long as the process is wanted."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    guard = [sys.executable, "-m", "tracealign.stage_guards"]
    return [*guard, f"--signal={int(signum)}", f"--parent={os.getpid()}", *argv]


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "a process that has not written its pid yet"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"


@contextlib.contextmanager
def exclusive_lock(path: Path | str, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on `path` (flock, released by the kernel when the holder dies,
    however it dies) for the duration of the block; the file names the holder.

    Raises StageBusyError at once, naming the lock file and the holder's pid, when another
    process holds it: a second writer fails fast instead of waiting on or racing the first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StageBusyError(
                f"{path}: {what} is already running ({_holder(path)}); "
                "wait for it to finish or stop that process"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)[:500],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def work_dir_lock(work_dir: Path | str, what: str) -> contextlib.AbstractContextManager[Path]:
    """The exclusive lock `<work_dir>.lock` beside a stage's working directory (outside it: the
    stage may remove the directory while it holds the lock)."""
    work_dir = Path(work_dir)
    return exclusive_lock(work_dir.with_name(f"{work_dir.name}.lock"), what)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    options = {"--signal": int(signal.SIGTERM), "--parent": None}
    while args and args[0].split("=")[0] in options:
        name, _, value = args.pop(0).partition("=")
        options[name] = int(value)
    if not args:
        print(
            "usage: python -m tracealign.stage_guards [--signal=N] [--parent=PID] CMD [ARG...]",
            file=sys.stderr,
        )
        return 2
    die_with_parent(options["--signal"], options["--parent"])
    os.execvp(args[0], args)
    return 127  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    raise SystemExit(main())
