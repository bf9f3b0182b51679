"""A retried pipeline flow run first closes what its earlier attempts left open.

Why: when a flow-run process dies with its machine (or is SIGKILLed), nothing reports for it.
The stage flow runs it had started through DVC (other processes, so not Prefect subflows) stay
Running in the Prefect UI for ever, and so do its own task runs, its in-process subflows and its
MLflow parent run. When the same flow run starts again (Retry in the UI, or a retry policy),
whatever is still open under it belongs to an earlier attempt by construction: nothing of the
new attempt has started yet. The processes themselves are gone: the stage processes die with
their parent (tracealign.stage_guards), and a second writer of a stage's output would fail on
its lock. Flow runs nobody retries are left to the server's zombie automation
(infra/prefect-automations.yaml), which needs heartbeats to stop for a while first.
"""

from __future__ import annotations

from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Crashed

from flows._stage import pipeline_tag
from tracealign.tracking import end_unfinished_runs

OPEN = [StateType.RUNNING, StateType.PENDING]


def close_earlier_attempts(flow_run_id: str, attempt: int, experiment_id: str) -> dict[str, int]:
    """Mark the flow runs that earlier attempts of pipeline flow run `flow_run_id` left Running
    or Pending, and the task runs of those and of the pipeline run, as Crashed, and end its
    MLflow parent runs still RUNNING as FAILED, each with a message saying so. Returns how many
    of each it closed."""
    closed = {"flow_runs": 0, "task_runs": 0, "mlflow_runs": 0}
    if attempt <= 1:
        return closed
    logger = get_run_logger()
    message = (
        f"Left open by an earlier attempt of pipeline flow run {flow_run_id}, whose process "
        f"is gone; closed when attempt {attempt} started."
    )
    run_uuid = UUID(flow_run_id)
    still_open = FlowRunFilterState(type=FlowRunFilterStateType(any_=OPEN))
    filters = (  # its stage flow runs (tagged), its in-process subflows
        FlowRunFilter(tags=FlowRunFilterTags(all_=[pipeline_tag(flow_run_id)]), state=still_open),
        FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_uuid]), state=still_open
        ),
    )
    with get_client(sync_client=True) as client:
        leftovers = {
            run.id: run
            for flow_filter in filters
            for run in client.read_flow_runs(flow_run_filter=flow_filter)
            if run.id != run_uuid
        }
        for run in leftovers.values():
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            logger.warning("flow run %s (%s) was %s: %s", run.name, run.id, run.state_name, message)
        task_runs = client.read_task_runs(  # its own and those of the flow runs just closed
            task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[run_uuid, *leftovers]),
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=OPEN)),
            )
        )
        for task_run in task_runs:
            client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
    closed["flow_runs"], closed["task_runs"] = len(leftovers), len(task_runs)
    ended = end_unfinished_runs(experiment_id, {"prefect.flow_run_id": flow_run_id}, message)
    for run_id in ended:
        logger.warning("MLflow run %s ended FAILED: %s", run_id, message)
    closed["mlflow_runs"] = len(ended)
    return closed
