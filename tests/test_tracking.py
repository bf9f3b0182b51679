"""MLflow tracking: dataset version from data.dvc, git commit, params, checkpoint, and a killed
training run that resumes from its checkpoint into the same MLflow run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest
from transformers import TrainerCallback

from tracealign.tracking import (
    configure_mlflow,
    dataset_version,
    end_run,
    git_commit,
    start_or_resume_run,
)
from tracealign.training.api import train
from tracealign.training.testing import tiny_settings, write_tiny_datasets


class Interrupted(Exception):
    """Stands in for the process being killed mid-run."""


class InterruptAfter(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise Interrupted(f"stopped at step {state.global_step}")


def test_dataset_version_prefers_data_dvc(tmp_path: Path) -> None:
    data = write_tiny_datasets(tmp_path / "data", n=2)
    local = dataset_version(data)
    assert local.kind == "content-hash" and len(local.digest) == 64
    (data / "train" / "extra.txt").write_text("changed")
    assert dataset_version(data).digest != local.digest
    (tmp_path / "data.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n"
    )
    version = dataset_version(data / "train")
    assert (version.kind, version.digest, version.name) == (
        "dvc",
        "0123456789abcdef0123456789abcdef.dir",
        "data",
    )


def test_git_commit_of_a_repository(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    env = ["-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", *env, "-C", str(tmp_path), "commit", "-qm", "m"], check=True)
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    assert git_commit(tmp_path) == head.strip()
    (tmp_path / "f").write_text("y")
    assert git_commit(tmp_path) == head.strip() + "-dirty"
    assert git_commit(tmp_path / "..") is None or tmp_path.parent.joinpath(".git").exists()


def test_killed_run_resumes_same_mlflow_run(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    data = write_tiny_datasets(tmp_path / "data", n=8)
    (tmp_path / "data.dvc").write_text(
        "outs:\n- md5: feedfacefeedfacefeedfacefeedface.dir\n  path: data\n"
    )
    settings = tiny_settings(  # sampled often: a fast machine finishes 3 steps within a second
        uri,
        str(tmp_path / "artifacts"),
        max_steps=6,
        log_system_metrics=True,
        system_metrics_interval_s=0.1,
        log_checkpoint=True,
    )
    models = tmp_path / "models"
    with pytest.raises(Interrupted):
        train("dpo", settings, data, models, callbacks=[InterruptAfter(3)])
    work = models / ".runs" / "dpo"
    assert (work / "checkpoint-2").is_dir() and not (models / "dpo").exists()
    mlflow.set_tracking_uri(uri)
    first = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert len(first) == 1 and first[0].info.status == "FAILED"  # KILLED for Ctrl-C
    run_id = first[0].info.run_id

    result = train("dpo", settings, data, models)
    assert result.resumed and result.run_id == run_id and result.global_step == 6
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert [r.info.run_id for r in runs] == [run_id]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "train-dpo"
    client = mlflow.MlflowClient()
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    # Steps 1-3 from the killed attempt, 3-6 from the resumed one (it restarts after checkpoint 2).
    assert min(steps) == 1 and max(steps) == 6 and 3 in steps and 5 in steps
    assert run.data.params["method"] == "dpo" and run.data.params["optim.max_steps"] == "6"
    assert run.data.tags["dataset.digest"] == "feedfacefeedfacefeedfacefeedface.dir"
    assert run.data.tags["dataset.version_source"] == "dvc"
    assert run.inputs.dataset_inputs[0].dataset.digest.startswith("feedface")
    assert "mlflow.source.git.commit" in run.data.tags
    assert any(key.startswith("system/") for key in run.data.metrics)
    artifacts = [a.path for a in client.list_artifacts(run_id, "checkpoint")]
    assert "checkpoint/model.safetensors" in artifacts
    assert not work.exists() and (models / "dpo" / "training_summary.json").is_file()

    # Other settings start a fresh run rather than resuming.
    other = tiny_settings(uri, str(tmp_path / "artifacts"), max_steps=1)
    assert train("dpo", other, data, models).run_id != run_id


def test_resumed_run_moves_under_the_parent_that_resumed_it(tmp_path: Path) -> None:
    """A retried pipeline resumes its stage's run: the run leaves the killed attempt's (FAILED)
    parent for the new one, and remembers the old one."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = configure_mlflow(experiment_name="resume")
    parents = []
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment) as parent:
            parents.append(parent.info.run_id)
    state = tmp_path / "run.json"

    def start(parent: str):
        return start_or_resume_run(
            run_name="train-sft",
            experiment_id=experiment,
            state_file=state,
            fingerprint="f1",
            parent_run_id=parent,
            log_system_metrics=False,
        )

    first = start(parents[0])
    end_run("FAILED")  # the killed attempt
    second = start(parents[1])
    end_run("FINISHED")
    assert second.resumed and second.run_id == first.run_id
    tags = mlflow.get_run(first.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parents[1]
    assert tags["resumed.from_parents"] == parents[0]
    children = mlflow.search_runs(
        [experiment], f"tags.mlflow.parentRunId = '{parents[1]}'", output_format="list"
    )
    assert [c.info.run_id for c in children] == [first.run_id]
