"""Registration: every evaluated model becomes a version of one registered MLflow model, and
the promotion gate decides whether `champion` moves (params.yaml `register:`).

Reads metrics/<method>.json (written by the evaluate stages) and models/<method>/; writes
reports/registry.json, the outcome per method, which DVC tracks: the version, the alias this
run set and why, the model's aliases as the server held them right after (inside the lock),
when the lock was held, and the aliases as read at the end of the stage. Registrations of one
model are serialised across pipelines by a Prefect global concurrency limit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mlflow
from prefect import flow, task

from flows._stage import parent_run_id, run_from_command_line, user_errors_fail_cleanly
from tasks.artifacts import publish_markdown, publish_table
from tasks.locks import promotion_lock, utc_timestamp
from tracealign.config import load_params, load_section
from tracealign.evaluation.settings import load_evaluation_settings
from tracealign.io import write_json
from tracealign.tracking import configure_mlflow, dataset_version, log_git_commit
from tracealign.tracking.registry import (
    Candidate,
    Registration,
    RegistrySettings,
    flatten,
    model_aliases,
    register,
)
from tracealign.training.errors import TrainingSetupError

METHOD_ORDER = ("sft", "dpo", "iopo", "cgpo")


def candidates(
    metrics_dir: Path, models_dir: Path, data_dir: Path, alignment: dict
) -> list[Candidate]:
    found = []
    version = dataset_version(data_dir).digest
    for method in METHOD_ORDER:
        path = metrics_dir / f"{method}.json"
        if not path.is_file():
            continue
        checkpoint = models_dir / method
        if not (checkpoint / "config.json").is_file():
            raise TrainingSetupError(f"{checkpoint}: missing checkpoint for {path}")
        nested = json.loads(path.read_text(encoding="utf-8"))
        per_decoding = {d: flatten(tree) for d, tree in nested.items() if isinstance(tree, dict)}
        found.append(Candidate(method, checkpoint, per_decoding, version, alignment))
    return found


def registration_rows(versions: dict[str, dict]) -> list[dict]:
    """registry.json's outcome per method as flat rows for a Prefect table artifact."""
    return [
        {
            "method": method,
            **{k: v for k, v in outcome.items() if not isinstance(v, dict)},
            "aliases_after": ", ".join(
                f"{a}=v{v}" for a, v in sorted((outcome.get("aliases_after") or {}).items())
            ),
        }
        for method, outcome in versions.items()
    ]


@task(name="register-model", retries=2, retry_delay_seconds=10)
def register_task(candidate: Candidate, settings: RegistrySettings) -> tuple[Registration, dict]:
    held: dict[str, str] = {}
    result = register(candidate, settings, lock=lambda: promotion_lock(settings.model_name, held))
    return result, held


@flow(name="register")
@user_errors_fail_cleanly
def register_flow(
    params: str = "params.yaml",
    metrics: str = "metrics",
    models: str = "models",
    data: str = "data",
    out: str = "reports/registry.json",
) -> dict:
    settings = load_section(load_params(params), "register", RegistrySettings, source=params)
    evaluation = load_evaluation_settings(params)
    alignment = evaluation.linear_alignment.model_dump(mode="json")
    found = candidates(Path(metrics), Path(models), Path(data), alignment)
    if not found:
        raise TrainingSetupError(f"{metrics}: no evaluated models (metrics/<method>.json) found")
    tracking = evaluation.mlflow
    experiment = configure_mlflow(tracking.tracking_uri, tracking.experiment_name)
    outcome: dict[str, dict] = {}
    with mlflow.start_run(
        experiment_id=experiment,
        run_name="register",
        parent_run_id=parent_run_id(),
        nested=parent_run_id() is not None,
        tags={"stage": "register"},
    ):
        log_git_commit(Path.cwd())
        for candidate in found:
            result, held = register_task(candidate, settings)
            outcome[candidate.method] = {
                "version": result.version,
                "alias": result.alias,
                "reason": result.reason,
                "decoding": result.decoding,
                "new_version": result.new,
                "aliases_after": result.aliases,
                "lock": held or None,
            }
            mlflow.set_tag(f"registered.{candidate.method}", f"v{result.version} {result.alias}")
    champion = next((m for m, o in outcome.items() if o["alias"] == "champion"), None)
    report = {
        "model_name": settings.model_name,
        "gate_metric": settings.gate_metric,
        "versions": outcome,
        "champion_from_this_run": champion,
        # What the server says now; another pipeline may move an alias later (see each
        # version's aliases_after and lock times for what this run set and when).
        "aliases": model_aliases(settings.model_name),
        "aliases_read_at": utc_timestamp(),
    }
    write_json(Path(out), report)
    publish_table(
        "registrations",
        registration_rows(outcome),
        description=f"versions of {settings.model_name}",
    )
    publish_markdown(
        "registration",
        f"# Registered `{settings.model_name}`\n\n"
        + "".join(
            f"- **{m}**: version {o['version']} → `{o['alias']}` ({o['reason']})\n"
            for m, o in outcome.items()
        ),
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.register", description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--models", default="models")
    parser.add_argument("--data", default="data")
    parser.add_argument("--out", default="reports/registry.json")
    return run_from_command_line(register_flow, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
