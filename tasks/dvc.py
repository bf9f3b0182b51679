"""DVC from Prefect: run the stage graph as a subprocess, streaming its output to the flow logs.

DVC alone decides what is up to date; the pipeline only names targets and passes the
environment (Prefect API, MLflow tracking and parent run) through to the stage processes.
DVC runs with a lifeline (tracealign.stage_guards): when this flow-run process dies, however it
dies, DVC gets SIGTERM, and the stage it runs follows (flows/_stage.py), so no orphan keeps
writing models/ beside a retried run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from prefect import get_run_logger, task

from tracealign.errors import UserFacingError
from tracealign.stage_guards import with_lifeline

_FAILED_STAGE = re.compile(r"failed to reproduce '([^']+)'")
_RUNNING_STAGE = re.compile(r"Running stage '([^']+)'")


class StageFailed(UserFacingError):
    """A DVC stage failed; the message names the stage and its last output lines."""

    def __init__(self, stage: str | None, tail: list[str]) -> None:
        self.stage = stage
        reason = next(
            (
                line
                for line in reversed(tail)
                if line.strip() and "ERROR" not in line and "failed to reproduce" not in line
            ),
            "",
        )
        super().__init__(f"stage '{stage or '?'}' failed: {reason.strip()}")


def dvc_executable() -> str:
    return shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))


@task(name="dvc")
def run_dvc(args: Sequence[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """Run `dvc <args>`; return the stages it ran. Raises StageFailed naming the failed stage."""
    logger = get_run_logger()
    logger.info("dvc %s", " ".join(args))
    process = subprocess.Popen(
        with_lifeline([dvc_executable(), *args]),
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    ran: list[str] = []
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-30:]
        if match := _RUNNING_STAGE.search(line):
            ran.append(match.group(1))
        if line:
            logger.info(line)
    code = process.wait()
    if code != 0:
        failed = next(
            (m.group(1) for line in tail if (m := _FAILED_STAGE.search(line))),
            ran[-1] if ran else None,
        )
        raise StageFailed(failed, tail)
    return ran
