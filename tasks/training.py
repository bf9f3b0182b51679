"""Training as Prefect tasks: retried on transient failures (an interrupted run resumes from its
last checkpoint and continues its MLflow run), never on settings a retry cannot fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from transformers import TrainerCallback

from flows._stage import parent_run_id
from tasks.artifacts import in_run
from tracealign.errors import UserFacingError
from tracealign.stage_guards import with_lifeline
from tracealign.training.api import TrainResult, finished_result, resolve_base_model, train
from tracealign.training.errors import TrainingSetupError
from tracealign.training.launch import launch_command
from tracealign.training.settings import TrainingSettings, load_training_settings


class PrefectProgress(TrainerCallback):
    """A transformers callback that shows training progress as a Prefect progress artifact."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.artifact_id = None
        self.last = -1.0

    def on_train_begin(self, args, state, control, **kwargs):
        if in_run() and state.is_world_process_zero:
            self.artifact_id = create_progress_artifact(progress=0.0, description=self.description)

    def on_step_end(self, args, state, control, **kwargs):
        if self.artifact_id is None or not state.max_steps:
            return
        progress = round(100.0 * state.global_step / state.max_steps, 1)
        if progress - self.last >= 1.0 or state.global_step == state.max_steps:
            update_progress_artifact(self.artifact_id, progress=progress)
            self.last = progress


def _transient(task, task_run, state) -> bool:
    """Retry anything but errors a user must fix (bad settings, missing files)."""
    try:
        state.result()
    except UserFacingError:
        return False
    except Exception:
        return True
    return False


def training_settings(params: str) -> TrainingSettings:
    """params.yaml's model/train sections, nested under the pipeline's MLflow run if any."""
    settings = load_training_settings(params)
    parent = parent_run_id()
    if parent:
        settings.train.mlflow.parent_run_id = parent
    return settings


@task(name="bootstrap-model", retries=1, retry_condition_fn=_transient)
def bootstrap_task(settings: TrainingSettings, data: Path, models: Path) -> str:
    return resolve_base_model(settings, data, models)


@task(name="train", retries=1, retry_delay_seconds=5, retry_condition_fn=_transient)
def train_task(
    method: str, settings: TrainingSettings, data: Path, models: Path, params: str
) -> TrainResult:
    """Train in this process, or on several under `accelerate launch` when
    `train.accelerate_config` names a config (each rank runs `python -m tracealign.training`)."""
    config = settings.train.accelerate_config
    if config is None:
        return train(
            method, settings, data, models, callbacks=[PrefectProgress(f"{method} training steps")]
        )
    command = launch_command(
        config,
        [
            "tracealign.training",
            "--method",
            method,
            "--params",
            params,
            "--data",
            str(data),
            "--models",
            str(models),
            *(
                ["--parent-run-id", settings.train.mlflow.parent_run_id]
                if settings.train.mlflow.parent_run_id
                else []
            ),
        ],
    )
    logger = get_run_logger()
    logger.info("launching: %s", " ".join(command))
    process = subprocess.Popen(  # the ranks stop when this stage process dies
        with_lifeline(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        logger.info(line.rstrip())
    if process.wait() != 0:
        reason = next((line for line in reversed(tail) if line.startswith("training: ")), None)
        if reason:
            raise TrainingSetupError(reason.removeprefix("training: "))
        raise RuntimeError(f"distributed training exited {process.returncode}: {tail[-1:]}")
    return finished_result(method, models / method)
