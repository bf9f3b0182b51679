"""Start or resume an MLflow run, and log what makes it reproducible.

Why a state file: a training run killed halfway and started again with the same settings must
continue the *same* MLflow run (its metric history, its params), not open a new one. The stage
writes `{run_id, fingerprint}` next to its checkpoints; a restart with the same fingerprint
resumes that run, anything else starts a fresh one. A run resumed under another parent run (a
retried pipeline) moves under that parent.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from tracealign.io import write_json

_MAX_PARAM_CHARS = 6000
PARENT_TAG = "mlflow.parentRunId"
EARLIER_PARENTS_TAG = "resumed.from_parents"


@dataclass(frozen=True)
class RunHandle:
    """The run a stage logs to; `resumed` says whether it continued an earlier, interrupted run."""

    run_id: str
    experiment_id: str
    resumed: bool


def configure_mlflow(
    tracking_uri: str | None = None,
    experiment_name: str = "tracealign",
    artifact_location: str | None = None,
) -> str:
    """Point MLflow at `tracking_uri` (else MLFLOW_TRACKING_URI, else MLflow's default) and make
    sure the experiment exists; returns the experiment id."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is None:
        try:
            return mlflow.create_experiment(experiment_name, artifact_location=artifact_location)
        except MlflowException:  # created by a concurrent process meanwhile
            experiment = mlflow.get_experiment_by_name(experiment_name)
            assert experiment is not None
    return experiment.experiment_id


def _resumable_run_id(state_file: Path, fingerprint: str) -> str | None:
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if state.get("fingerprint") != fingerprint or not state.get("run_id"):
        return None
    try:
        run = mlflow.get_run(state["run_id"])
    except MlflowException:
        return None  # the run lives in another tracking store
    if run.info.status == RunStatus.to_string(RunStatus.FINISHED):
        return None
    return run.info.run_id


def start_or_resume_run(
    *,
    run_name: str,
    experiment_id: str,
    state_file: Path | str,
    fingerprint: str,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    log_system_metrics: bool = True,
    system_metrics_interval_s: float = 10.0,
) -> RunHandle:
    """Continue the unfinished run recorded in `state_file` for `fingerprint`, or start one.

    The run becomes MLflow's active run (end it with `end_run`). System metrics (CPU, memory,
    GPU) are sampled in the background every `system_metrics_interval_s` seconds.
    """
    state_file = Path(state_file)
    run_id = _resumable_run_id(state_file, fingerprint)
    if log_system_metrics:
        mlflow.set_system_metrics_sampling_interval(system_metrics_interval_s)
    if run_id is not None:
        active = mlflow.start_run(run_id=run_id, log_system_metrics=log_system_metrics)
        mlflow.set_tag("resumed", "true")
        if parent_run_id is not None:
            _repoint_parent(active.data.tags, parent_run_id)
        resumed = True
    else:
        active = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=run_name,
            parent_run_id=parent_run_id,
            nested=parent_run_id is not None,
            tags=dict(tags or {}),
            log_system_metrics=log_system_metrics,
        )
        resumed = False
        write_json(state_file, {"run_id": active.info.run_id, "fingerprint": fingerprint})
    return RunHandle(
        run_id=active.info.run_id, experiment_id=active.info.experiment_id, resumed=resumed
    )


def _repoint_parent(tags: Mapping[str, str], parent_run_id: str) -> None:
    """Nest the resumed (active) run under the parent run that resumed it.

    A killed pipeline attempt's parent run ends FAILED; the retry opens a new parent run and
    resumes the stage's run. Left under the failed parent, the finished run would be missing
    from the parent that completed. The earlier parents stay listed in `resumed.from_parents`.
    """
    previous = tags.get(PARENT_TAG)
    if previous == parent_run_id:
        return
    earlier = [p for p in tags.get(EARLIER_PARENTS_TAG, "").split(",") if p]
    if previous and previous not in earlier:
        earlier.append(previous)
    mlflow.set_tags({PARENT_TAG: parent_run_id, EARLIER_PARENTS_TAG: ",".join(earlier)})


def end_run(status: str = "FINISHED") -> None:
    """End the active run with `status` (FINISHED, FAILED or KILLED)."""
    if mlflow.active_run() is not None:
        mlflow.end_run(status=status)


def end_unfinished_runs(
    experiment_id: str, tags: Mapping[str, str], reason: str, status: str = "FAILED"
) -> list[str]:
    """End the runs of `experiment_id` that carry `tags` and are still RUNNING (their process
    died without ending them) with `status`, tagging `closed_by` with `reason`; return their ids.
    """
    client = MlflowClient()
    where = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    runs = client.search_runs([experiment_id], f"{where} and attributes.status = 'RUNNING'")
    for run in runs:
        client.set_tag(run.info.run_id, "closed_by", reason)
        client.set_terminated(run.info.run_id, status)
    return [run.info.run_id for run in runs]


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted keys with string values MLflow accepts."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            flat[name] = str(value)[:_MAX_PARAM_CHARS]
    return flat


def log_params(params: Mapping[str, Any]) -> None:
    """Log nested params once; on a resumed run, keys already logged with the same value are kept.

    MLflow refuses to change a logged param, so only keys not yet on the run are logged.
    """
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("log_params needs an active MLflow run")
    existing = mlflow.get_run(active.info.run_id).data.params
    fresh = {k: v for k, v in flatten_params(params).items() if k not in existing}
    if fresh:
        mlflow.log_params(fresh)


def git_commit(path: Path | str = ".") -> str | None:
    """The commit checked out at `path` (None outside a git repository), `-dirty` if modified."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def log_git_commit(path: Path | str = ".") -> str | None:
    """Tag the active run with the git commit of `path` (MLflow's own source tag)."""
    commit = git_commit(path)
    if commit is not None:
        mlflow.set_tags(
            {"mlflow.source.git.commit": commit.removesuffix("-dirty"), "git.commit": commit}
        )
    return commit


def log_checkpoint(path: Path | str, artifact_path: str = "checkpoint") -> None:
    """Upload a checkpoint directory as run artifacts and tag where it lives on disk."""
    path = Path(path)
    mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    mlflow.set_tag(f"{artifact_path}.local_path", str(path.resolve()))
