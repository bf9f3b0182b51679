"""`train(method, settings, data_dir, out_dir)`: the one entry point of the training stage.

It checks everything that can be checked before a step (method, dataset file and rows, model
path, chat template), resolves where the method starts from, opens or resumes the MLflow run,
trains (resuming from the last checkpoint of an interrupted run with the same settings) and
writes the final model atomically to `<out_dir>/<method>/`.

Layout under `out_dir` (default `models/`):
    base/              the embedded tiny model, when `model.name_or_path` is null
    <method>/          the final checkpoint (a Hugging Face directory) + training_summary.json
    .runs/<method>/    checkpoints and the MLflow run id of an unfinished run (removed on success)
    .runs/<method>.lock  held by the process that trains <method>; a second one fails at once
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracealign.io import atomic_dir, write_json
from tracealign.stage_guards import work_dir_lock
from tracealign.training.data import check_rows, dataset_file
from tracealign.training.errors import TrainingSetupError
from tracealign.training.loading import check_model_source, load_tokenizer
from tracealign.training.settings import METHODS, TrainingSettings


@dataclass
class TrainResult:
    """What a finished training run produced."""

    method: str
    checkpoint_dir: Path
    run_id: str | None
    global_step: int
    resumed: bool
    metrics: dict[str, float] = field(default_factory=dict)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _builder(method: str) -> Callable[..., Any]:
    if method == "sft":
        from tracealign.training.sft import build_sft_trainer

        return build_sft_trainer
    if method == "dpo":
        from tracealign.training.dpo import build_dpo_trainer

        return build_dpo_trainer
    if method == "iopo":
        from tracealign.training.iopo import build_iopo_trainer

        return build_iopo_trainer
    from tracealign.training.reward import build_reward_trainer

    return build_reward_trainer


def resolve_base_model(
    settings: TrainingSettings, data_dir: Path, out_dir: Path, split: str = "train"
) -> str:
    """The model a fresh run of SFT starts from: `model.name_or_path`, or the embedded tiny model
    (built once into `<out_dir>/base` from the training corpus and reused while its settings hold)."""
    if settings.model.name_or_path is not None:
        check_model_source(settings.model.name_or_path)
        return settings.model.name_or_path
    base = out_dir / "base"
    stamp = {"model": settings.model.model_dump(mode="json"), "seed": settings.train.seed}
    stamp_file = base / "bootstrap.json"
    if stamp_file.is_file() and json.loads(stamp_file.read_text(encoding="utf-8")) == stamp:
        return str(base)
    if not _is_main_process():
        raise TrainingSetupError(f"{base}: build the embedded model in a single process first")
    from tracealign.training.bootstrap import bootstrap_tiny_model, dataset_corpus

    bootstrap_tiny_model(
        dataset_corpus(data_dir, split), base, settings.model, seed=settings.train.seed
    )
    write_json(stamp_file, stamp)
    return str(base)


def resolve_start(
    method: str, settings: TrainingSettings, data_dir: Path, out_dir: Path, split: str
) -> str:
    """SFT starts from the base model; the others from `train.init_from`, else `<out_dir>/sft`
    when it exists (the paper's recipe: preference training after SFT), else the base model."""
    if method != "sft":
        if settings.train.init_from is not None:
            check_model_source(settings.train.init_from)
            return settings.train.init_from
        sft_dir = out_dir / "sft"
        if (sft_dir / "config.json").is_file():
            return str(sft_dir)
    return resolve_base_model(settings, data_dir, out_dir, split)


def train(
    method: str,
    settings: TrainingSettings,
    data_dir: Path | str,
    out_dir: Path | str = "models",
    *,
    split: str = "train",
    callbacks: list | None = None,
) -> TrainResult:
    """Train `method` (sft, dpo, iopo or reward) on `<data_dir>/<split>/` into `<out_dir>/<method>/`.

    Raises TrainingSetupError, with a one-line reason, before any training step when the method,
    the dataset, the model path or the tokenizer's chat template is wrong. Multi-process data
    parallel runs (`accelerate launch`) call this on every rank; only rank 0 talks to MLflow.
    """
    if method not in METHODS:
        raise TrainingSetupError(
            f"unknown training method '{method}'; choose one of {', '.join(METHODS)}"
        )
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    data_path = dataset_file(data_dir, method, split)
    check_rows(method, data_path)
    source = resolve_start(method, settings, data_dir, out_dir, split)
    load_tokenizer(
        source, trust_remote_code=settings.model.trust_remote_code
    )  # chat template check

    from tracealign.tracking import dataset_version

    version = dataset_version(data_dir)
    fingerprint = f"{settings.fingerprint(method)}-{version.digest[:16]}"
    work_dir = out_dir / ".runs" / method
    state_file = work_dir / "run.json"
    # One writer of .runs/<method>/ and <method>/ at a time; rank 0 holds it for every rank.
    lock = work_dir_lock(work_dir, f"training of {method}") if _is_main_process() else nullcontext()
    with lock:
        _discard_stale_state(work_dir, state_file, fingerprint)

        from tracealign.training.common import MlflowStepLogger, last_checkpoint

        handle = None
        status = "FAILED"
        try:
            if _is_main_process():
                handle = _open_run(
                    method, settings, data_dir, source, state_file, fingerprint, split
                )
            trainer = _builder(method)(
                source, settings, data_path, work_dir, [MlflowStepLogger(), *(callbacks or [])]
            )
            resume = last_checkpoint(work_dir)
            output = trainer.train(resume_from_checkpoint=resume)
            final_dir = out_dir / method
            _save_final(
                trainer, work_dir / "final", final_dir, method, source, version.digest, handle
            )
            metrics = {k: float(v) for k, v in output.metrics.items() if isinstance(v, int | float)}
            if handle is not None:
                import mlflow

                from tracealign.tracking import log_checkpoint

                mlflow.log_metrics(
                    {f"final/{k}": v for k, v in metrics.items()}, step=trainer.state.global_step
                )
                if settings.train.mlflow.log_checkpoint:
                    log_checkpoint(final_dir)
            status = "FINISHED"
            trainer.accelerator.wait_for_everyone()
            if _is_main_process():
                shutil.rmtree(work_dir, ignore_errors=True)
            return TrainResult(
                method=method,
                checkpoint_dir=final_dir,
                run_id=handle.run_id if handle else None,
                global_step=trainer.state.global_step,
                resumed=bool(handle and handle.resumed),
                metrics=metrics,
            )
        except (KeyboardInterrupt, SystemExit):
            status = "KILLED"
            raise
        finally:
            if handle is not None:
                from tracealign.tracking import end_run

                end_run(status)


def _discard_stale_state(work_dir: Path, state_file: Path, fingerprint: str) -> None:
    """Checkpoints of a run with other settings must not be resumed; remove them."""
    if not _is_main_process() or not work_dir.exists():
        return
    try:
        previous = json.loads(state_file.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, json.JSONDecodeError):
        previous = None
    if previous != fingerprint:
        shutil.rmtree(work_dir, ignore_errors=True)


def _open_run(
    method: str,
    settings: TrainingSettings,
    data_dir: Path,
    source: str,
    state_file: Path,
    fingerprint: str,
    split: str,
):
    from tracealign.tracking import (
        configure_mlflow,
        log_dataset_version,
        log_git_commit,
        log_params,
        start_or_resume_run,
    )

    tracking = settings.train.mlflow
    experiment_id = configure_mlflow(
        tracking.tracking_uri, tracking.experiment_name, tracking.artifact_location
    )
    handle = start_or_resume_run(
        run_name=f"train-{method}",
        experiment_id=experiment_id,
        state_file=state_file,
        fingerprint=fingerprint,
        parent_run_id=tracking.parent_run_id,
        tags={"stage": "train", "method": method},
        log_system_metrics=tracking.log_system_metrics,
        system_metrics_interval_s=tracking.system_metrics_interval_s,
    )
    log_params(
        {
            "method": method,
            "init_from": source,
            "split": split,
            "model": settings.model.model_dump(mode="json"),
            "train": settings.train.model_dump(
                mode="json", exclude={"mlflow", "sft", "dpo", "iopo", "reward"}
            ),
            "optim": settings.train.optim(method).model_dump(mode="json"),
        }
    )
    log_git_commit(Path.cwd())
    log_dataset_version(data_dir, context="training")
    return handle


def _save_final(
    trainer, staging: Path, final_dir: Path, method: str, source: str, digest: str, handle
) -> None:
    """Save the trained model (LoRA merged into the weights) and swap it into `final_dir`."""
    from peft import PeftModel

    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        if trainer.is_world_process_zero():
            merged = model.merge_and_unload()
            merged.save_pretrained(staging)
    else:
        trainer.save_model(str(staging))
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return
    with atomic_dir(final_dir) as tmp:
        shutil.copytree(staging, tmp, dirs_exist_ok=True)
        trainer.processing_class.save_pretrained(tmp)
        write_json(
            tmp / "training_summary.json",
            {
                "method": method,
                "init_from": source,
                "dataset_digest": digest,
                "global_step": trainer.state.global_step,
                "run_id": handle.run_id if handle else None,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "log_history": trainer.state.log_history,
            },
        )


def finished_result(method: str, checkpoint_dir: Path) -> TrainResult:
    """The TrainResult of a run that finished in other processes (`accelerate launch`), read
    from the checkpoint's training_summary.json."""
    summary_path = Path(checkpoint_dir) / "training_summary.json"
    if not summary_path.is_file():
        raise TrainingSetupError(f"{summary_path}: missing; the training run did not finish")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    final = next(
        (entry for entry in reversed(summary.get("log_history", [])) if "train_runtime" in entry),
        {},
    )
    return TrainResult(
        method=method,
        checkpoint_dir=Path(checkpoint_dir),
        run_id=summary.get("run_id"),
        global_step=int(summary.get("global_step", 0)),
        resumed=False,
        metrics={k: float(v) for k, v in final.items() if isinstance(v, int | float)},
    )
