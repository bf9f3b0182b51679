"""What every stage flow shares: the command line, user-facing failures, the MLflow parent run.

A stage flow called by DVC (`python -m flows.train --method iopo`) reports to the Prefect API
named by PREFECT_API_URL (the pipeline sets it for the stages it drives). Errors a user can fix
end the flow run Failed with the one-line reason as its state message, in the UI and on the
terminal, without a traceback.

Started by DVC, a stage dies with DVC (SIGTERM, which Prefect turns into a Crashed flow run):
an orphaned stage would keep writing models/ after its pipeline's worker is gone. Started by a
pipeline run, its flow run carries the tag `tracealign-pipeline:<flow run id>`, so a retry of
that pipeline run can find and close what its killed attempt left Running.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from prefect import get_run_logger, tags
from prefect.states import Failed, State

from tracealign.errors import UserFacingError
from tracealign.stage_guards import die_with_parent

PARENT_RUN_ENV = "TRACEALIGN_MLFLOW_PARENT_RUN_ID"
"""The pipeline's MLflow parent run; stage runs nest under it when it is set."""
PIPELINE_RUN_ENV = "TRACEALIGN_PIPELINE_FLOW_RUN_ID"
"""The pipeline's Prefect flow run; stage flow runs are tagged with it when it is set."""
PIPELINE_TAG_PREFIX = "tracealign-pipeline:"


def pipeline_tag(flow_run_id: str) -> str:
    return f"{PIPELINE_TAG_PREFIX}{flow_run_id}"


P = ParamSpec("P")
R = TypeVar("R")


def parent_run_id() -> str | None:
    return os.environ.get(PARENT_RUN_ENV) or None


def user_errors_fail_cleanly(fn: Callable[P, R]) -> Callable[P, R | State]:
    """Turn a UserFacingError raised by the stage into a Failed state with its message."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | State:
        try:
            return fn(*args, **kwargs)
        except UserFacingError as exc:
            get_run_logger().error(str(exc))
            return Failed(message=str(exc))

    return wrapper


def run_from_command_line(
    flow: Any, parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> int:
    """Parse arguments, run the flow, exit 1 with the failure message if it failed."""
    args = vars(parser.parse_args(argv))
    if os.environ.get("DVC_STAGE"):  # started by `dvc repro` / `dvc exp run`
        die_with_parent()
    pipeline = os.environ.get(PIPELINE_RUN_ENV)
    with tags(*([pipeline_tag(pipeline)] if pipeline else [])):
        state = flow(**args, return_state=True)
    if state.is_failed():
        print(f"{flow.name}: {state.message}", file=sys.stderr)
        return 1
    return 0
