"""MLflow helpers every stage shares: start-or-resume a run, log the git commit, the dataset
version, flattened params and checkpoints. Importing this package imports mlflow, not Prefect."""

from tracealign.tracking.dataset_version import DatasetVersion, dataset_version, log_dataset_version
from tracealign.tracking.runs import (
    RunHandle,
    configure_mlflow,
    end_run,
    end_unfinished_runs,
    flatten_params,
    git_commit,
    log_checkpoint,
    log_git_commit,
    log_params,
    start_or_resume_run,
)

__all__ = [
    "DatasetVersion",
    "RunHandle",
    "configure_mlflow",
    "dataset_version",
    "end_run",
    "end_unfinished_runs",
    "flatten_params",
    "git_commit",
    "log_checkpoint",
    "log_dataset_version",
    "log_git_commit",
    "log_params",
    "start_or_resume_run",
]
