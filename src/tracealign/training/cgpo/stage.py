"""The CGPO stage: settings -> judges, reward models, task prompts -> loop -> checkpoint.

What `flows.train` (or the CLI) calls for method `cgpo`. Reads `<data_dir>/<split>/cgpo.jsonl`,
splits the prompts into disjoint tasks by `CGPOTask.task`, loads one reward model per task
(rewards are never mixed across tasks), runs the loop with metrics sent to the active MLflow
run when there is one, and writes the policy atomically to `output_dir`.
"""

from __future__ import annotations

from pathlib import Path

from tracealign.io import atomic_dir, read_rows
from tracealign.judges import Judge, JudgeConfigError, MixtureOfJudges
from tracealign.judges.code import CodeJudge
from tracealign.judges.instruction import InstructionFollowingJudge
from tracealign.judges.math import MathJudge
from tracealign.judges.sandbox import SandboxLimits
from tracealign.schemas import CGPOTask
from tracealign.training.cgpo.loop import MetricsLogger, StepResult, TaskRuntime, run_cgpo
from tracealign.training.cgpo.rollout import RewardContext
from tracealign.training.cgpo.settings import CGPOSettings
from tracealign.training.errors import TrainingSetupError
from tracealign.training.loading import default_device, load_policy, load_reward_model
from tracealign.training.settings import TrackingSettings


def build_judges(names: list[str], settings: CGPOSettings) -> MixtureOfJudges:
    """Judge names from params.yaml -> a mixture (AND)."""
    judges: list[Judge] = []
    for name in names:
        if name == "math":
            judges.append(MathJudge())
        elif name == "code":
            box = settings.sandbox
            limits = SandboxLimits(box.wall_seconds, box.cpu_seconds, box.memory_mb)
            judges.append(CodeJudge(limits, workers=box.workers))
        elif name == "instruction_following":
            judges.append(InstructionFollowingJudge())
        elif name == "llm":
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from tracealign.judges.llm import LocalLLMJudge

            if not settings.llm_judge:
                raise JudgeConfigError("cgpo.llm_judge: set a judge model directory")
            model = AutoModelForCausalLM.from_pretrained(settings.llm_judge)
            tokenizer = AutoTokenizer.from_pretrained(settings.llm_judge)
            judges.append(LocalLLMJudge(model, tokenizer))
        else:
            raise JudgeConfigError(f"unknown judge {name!r}")
    return MixtureOfJudges(judges)


def load_tasks(settings: CGPOSettings) -> dict[str, list[CGPOTask]]:
    """Task prompts grouped by task name; each configured task must have prompts."""
    path = Path(settings.data_dir) / settings.split / "cgpo.jsonl"
    rows = read_rows(path, CGPOTask)
    grouped: dict[str, list[CGPOTask]] = {}
    for row in rows:
        grouped.setdefault(row.task, []).append(row)
    missing = [name for name in settings.tasks if not grouped.get(name)]
    if missing:
        raise TrainingSetupError(f"{path}: no prompts for configured CGPO tasks {missing}")
    return grouped


def train_cgpo(
    settings: CGPOSettings, log_metrics: MetricsLogger | None = None
) -> tuple[Path, list[StepResult]]:
    """Run CGPO as configured and save the policy; returns (checkpoint dir, history)."""
    prompts = load_tasks(settings)
    policy, tokenizer = load_policy(settings.policy, device=default_device())
    reference, _ = load_policy(settings.reference or settings.policy, device=policy.device)
    reward_cache: dict[str, tuple] = {}
    runtimes = []
    for name, task in settings.tasks.items():
        if task.reward_model not in reward_cache:
            reward_cache[task.reward_model] = load_reward_model(
                task.reward_model, device=policy.device
            )
        model, reward_tok = reward_cache[task.reward_model]
        context = RewardContext(model, reward_tok, build_judges(task.judges, settings))
        runtimes.append(TaskRuntime(name, task, prompts[name], context))
    history = run_cgpo(policy, reference, tokenizer, runtimes, settings, log_metrics)
    out = Path(settings.output_dir)
    with atomic_dir(out) as tmp:
        policy.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out, history


def train_cgpo_tracked(
    settings: CGPOSettings, tracking: TrackingSettings, work_dir: Path | str = "models/.runs/cgpo"
) -> tuple[Path, list[StepResult], str]:
    """`train_cgpo` inside an MLflow run: params, git commit, dataset version, per-iteration
    metrics (per task: violation rate per judge, calibrated reward, KL, chosen/rejected counts,
    skipped prompts) and the checkpoint. Returns (checkpoint dir, history, run id).

    Holds `<work_dir>.lock` throughout: a second CGPO training of the same output fails at once.
    """
    from tracealign.stage_guards import work_dir_lock

    with work_dir_lock(work_dir, "training of cgpo"):
        return _train_cgpo_tracked(settings, tracking, work_dir)


def _train_cgpo_tracked(
    settings: CGPOSettings, tracking: TrackingSettings, work_dir: Path | str
) -> tuple[Path, list[StepResult], str]:
    import hashlib
    import json

    import mlflow

    from tracealign.tracking import (
        configure_mlflow,
        end_run,
        log_checkpoint,
        log_dataset_version,
        log_git_commit,
        log_params,
        start_or_resume_run,
    )

    if not Path(settings.policy).is_dir():
        raise TrainingSetupError(
            f"cgpo.policy: {settings.policy} is not a model directory (train SFT first)"
        )
    experiment_id = configure_mlflow(
        tracking.tracking_uri, tracking.experiment_name, tracking.artifact_location
    )
    payload = json.dumps(settings.model_dump(mode="json"), sort_keys=True).encode()
    handle = start_or_resume_run(
        run_name="train-cgpo",
        experiment_id=experiment_id,
        state_file=Path(work_dir) / "run.json",
        fingerprint=hashlib.sha256(payload).hexdigest()[:16],
        parent_run_id=tracking.parent_run_id,
        tags={"stage": "train", "method": "cgpo"},
        log_system_metrics=tracking.log_system_metrics,
        system_metrics_interval_s=tracking.system_metrics_interval_s,
    )
    status = "FAILED"
    try:
        log_params({"method": "cgpo", "cgpo": settings.model_dump(mode="json")})
        log_git_commit(Path.cwd())
        log_dataset_version(settings.data_dir, context="training")
        out, history = train_cgpo(
            settings, log_metrics=lambda metrics, step: mlflow.log_metrics(metrics, step=step)
        )
        if tracking.log_checkpoint:
            log_checkpoint(out)
        status = "FINISHED"
        return out, history, handle.run_id
    finally:
        end_run(status)
