"""Stage processes die with the process that started them, and one writer holds a stage's
output: real processes, real signals, real file locks (Linux)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tracealign.stage_guards import StageBusyError, exclusive_lock, with_lifeline, work_dir_lock

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

# Stand-ins for the three processes: the flow-run process (depth 2) starts `dvc` (depth 1)
# through the lifeline, as tasks/dvc.py does; `dvc` starts the stage (depth 0) with a plain
# Popen, as DVC does; the stage sets its own parent-death signal, as flows/_stage.py does.
CHAIN = textwrap.dedent(
    """
    import subprocess, sys, time
    from tracealign.stage_guards import die_with_parent, with_lifeline

    depth, me = int(sys.argv[1]), sys.argv[2]
    if depth == 0:
        die_with_parent()
    print(depth, flush=True)
    child = [sys.executable, "-c", me, str(depth - 1), me]
    if depth == 2:
        subprocess.Popen(with_lifeline(child))
    elif depth == 1:
        subprocess.Popen(child)
    time.sleep(120)
    """
)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


def _wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def test_sigkilled_parent_takes_its_stage_processes_along() -> None:
    top = subprocess.Popen(
        [sys.executable, "-c", CHAIN, "2", CHAIN],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    descendants: list[int] = []
    try:
        assert top.stdout is not None
        assert [top.stdout.readline().strip() for _ in range(3)] == ["2", "1", "0"]
        descendants = [p.pid for p in psutil.Process(top.pid).children(recursive=True)]
        assert len(descendants) == 2
        # The worker's kill reaches only the top process: its own session leaves the others out
        # of reach of a group kill, as a flow-run process's children are.
        os.kill(top.pid, signal.SIGKILL)
        top.wait(timeout=10)
        assert _wait_gone(descendants, 10) == []
    finally:
        top.kill()
        for pid in _alive(descendants):  # only if the test failed: no strays
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_lifeline_execs_the_command_itself() -> None:
    command = with_lifeline([sys.executable, "-c", "import os; print(os.getpid())"])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out.strip() == str(process.pid)  # no wrapper process stays in between


def test_second_writer_fails_fast_naming_the_lock_and_holder(tmp_path: Path) -> None:
    work = tmp_path / "models" / ".runs" / "sft"
    with work_dir_lock(work, "training of sft") as lock:
        assert lock == tmp_path / "models" / ".runs" / "sft.lock"
        started = time.monotonic()
        with pytest.raises(StageBusyError) as busy, exclusive_lock(lock, "training of sft"):
            pass
        assert time.monotonic() - started < 1.0
        message = str(busy.value)
        assert str(lock) in message and f"pid {os.getpid()}" in message
        assert "training of sft is already running" in message
    with exclusive_lock(lock, "training of sft"):  # released on exit
        pass


def test_lock_of_a_killed_holder_is_free_again(tmp_path: Path) -> None:
    lock = tmp_path / "cgpo.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from tracealign.stage_guards import exclusive_lock\n"
            f"with exclusive_lock({str(lock)!r}, 'training of cgpo'):\n"
            "    print('held', flush=True); time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(StageBusyError, match=f"pid {holder.pid} "),
            exclusive_lock(lock, "training of cgpo"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)
    with exclusive_lock(lock, "training of cgpo"):  # the kernel released the dead holder's lock
        pass
