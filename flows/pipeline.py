"""The end-to-end pipeline: generate -> (DVC) validate -> base -> SFT, reward, DPO, IOPO, CGPO ->
evaluate each with and without Linear Alignment -> register.

Parameters are what a person sets in the Prefect UI: the methods, the model (a Hugging Face id
or local path; none = the embedded tiny model), a profile (profiles/<name>.yaml, e.g. `micro`)
and parameter overrides (dotted params.yaml keys). They are written into params.yaml (as
`dvc exp run -S` would); the data is generated and checked against data.dvc; then DVC runs the
stage graph (`dvc exp run`, so every run is also a DVC experiment) and decides what is up to
date. An MLflow parent run holds the stage runs. The run ends with the comparison table.

`python -m flows.pipeline` starts a local Prefect server when PREFECT_API_URL is not set.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import yaml
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows._prefect_server import local_prefect_server
from flows._stage import PARENT_RUN_ENV, PIPELINE_RUN_ENV, user_errors_fail_cleanly
from flows.generate import generate_flow
from flows.register import registration_rows
from tasks.artifacts import publish_markdown, publish_table
from tasks.attempts import close_earlier_attempts
from tasks.dvc import run_dvc
from tracealign.config import ConfigError, apply_overrides, flatten_overrides
from tracealign.evaluation.report import comparison_table
from tracealign.tracking import configure_mlflow, git_commit
from tracealign.tracking.registry import flatten
from tracealign.training.settings import load_training_settings
from tracealign.versioning import read_version

METHODS = ("sft", "dpo", "iopo", "cgpo")
PROFILES_DIR = Path("profiles")


def resolve_overrides(profile: str, model: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """Profile file, then the model, then explicit overrides, as dotted params.yaml keys."""
    merged: dict[str, Any] = {}
    if profile != "default":
        path = PROFILES_DIR / f"{profile}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
            raise ConfigError(f"unknown profile '{profile}'; known: default, {', '.join(known)}")
        merged.update(flatten_overrides(yaml.safe_load(path.read_text(encoding="utf-8")) or {}))
    if model:
        merged["model.name_or_path"] = model
    merged.update(overrides)
    return merged


def experiment_name() -> str:
    name = flow_run.get_name() or "run"
    run_id = (flow_run.get_id() or "")[:8]
    return re.sub(r"[^A-Za-z0-9-]+", "-", f"{name}-{run_id}").strip("-")


def read_metrics(methods: list[str], metrics_dir: Path = Path("metrics")) -> dict[str, dict]:
    found = {}
    for method in methods:
        path = metrics_dir / f"{method}.json"
        if path.is_file():
            found[method] = json.loads(path.read_text(encoding="utf-8"))
    return found


@flow(name="tracealign-pipeline")
@user_errors_fail_cleanly
def pipeline(
    methods: list[str] = list(METHODS),  # noqa: B006 (Prefect copies parameters)
    model: str | None = None,
    profile: str = "default",
    overrides: dict[str, Any] | None = None,
    push_data: bool = False,
    params: str = "params.yaml",
) -> dict:
    """Run the pipeline for `methods` on `model` with `profile` and `overrides` applied."""
    logger = get_run_logger()
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"unknown method(s) {unknown or methods}; choose from {METHODS}")
    changed = apply_overrides(params, resolve_overrides(profile, model, overrides or {}))
    if changed:
        logger.info("params.yaml overrides: %s", changed)
    training = load_training_settings(params)
    tracking = training.train.mlflow
    experiment = configure_mlflow(
        tracking.tracking_uri, tracking.experiment_name, tracking.artifact_location
    )
    run_id, attempt = str(flow_run.get_id()), flow_run.get_run_count()
    closed = close_earlier_attempts(run_id, attempt, experiment)
    if any(closed.values()):
        logger.info("attempt %d; closed what earlier attempts left open: %s", attempt, closed)
    generate_flow(params=params, out="data", push_remote=push_data)

    exp_name = experiment_name() if list(methods) == list(METHODS) else None
    version = read_version("data.dvc")
    tags = {
        "stage": "pipeline",
        "prefect.flow_run_id": run_id,
        "prefect.flow_run_attempt": str(attempt),
        "dvc.experiment": exp_name or "(partial run: not a DVC experiment)",
        "git.commit": git_commit(".") or "unknown",
        "dataset.version": version.md5 if version else "unknown",
        "profile": profile,
        "methods": ",".join(methods),
    }
    parent = mlflow.start_run(
        experiment_id=experiment, run_name=f"pipeline {exp_name or ''}", tags=tags
    )
    mlflow.log_params({f"override.{k}": v for k, v in changed.items()} or {"overrides": "none"})
    env = {
        PARENT_RUN_ENV: parent.info.run_id,
        PIPELINE_RUN_ENV: run_id,
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
    }
    status = "FAILED"
    try:
        if exp_name:
            ran = run_dvc(["exp", "run", "--name", exp_name], Path.cwd(), env)
        else:
            ran = run_dvc(["repro", *(f"evaluate@{m}" for m in methods)], Path.cwd(), env)
            ran += run_dvc(["repro", "--single-item", "register"], Path.cwd(), env)
        metrics = read_metrics(list(methods))
        table = comparison_table(metrics)
        for method, tree in metrics.items():  # the headline IF of each model on the parent run
            mlflow.log_metrics(
                {
                    f"{method}/{name}": value
                    for name, value in flatten(tree).items()
                    if value is not None and name.endswith(("/eval/if", "/eval_ood/if"))
                }
            )
        registry = Path("reports/registry.json")
        registered = json.loads(registry.read_text()) if registry.is_file() else {}
        status = "FINISHED"
    finally:
        mlflow.end_run(status)
    publish_markdown(
        "comparison",
        f"# Pipeline {exp_name or ''}\n\nStages run: "
        f"{', '.join(ran) or 'none (all up to date)'}\n\n{table}",
    )
    publish_table("registered-versions", registration_rows(registered.get("versions", {})))
    return {
        "experiment": exp_name,
        "stages_run": ran,
        "table": table,
        "mlflow_parent_run_id": parent.info.run_id,
        "registry": registered,
    }


UI_HELP = """\
Open the UIs on this run's data:
  Prefect:  PREFECT_HOME={prefect_home} {bin}/prefect server start   # then http://127.0.0.1:4200
  MLflow:   {bin}/mlflow ui --backend-store-uri {mlflow_uri}   # then http://127.0.0.1:5000
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--model", help="Hugging Face id or local path (default: embedded)")
    parser.add_argument("--profile", default="default", help="profiles/<name>.yaml, or default")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="params.yaml override, e.g. train.beta=0.2",
    )
    parser.add_argument("--push-data", action="store_true", help="dvc push a new data version")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    prefect_home = Path(os.environ.get("PREFECT_HOME", ".prefect"))
    if not os.environ.get("PREFECT_API_URL"):  # no server: run against a local one
        with local_prefect_server(prefect_home) as url:
            env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_HOME": str(prefect_home)}
            return subprocess.call(
                [sys.executable, "-m", "flows.pipeline", *(argv or sys.argv[1:])], env=env
            )
    state = pipeline(
        methods=args.methods,
        model=args.model,
        profile=args.profile,
        overrides=overrides,
        push_data=args.push_data,
        return_state=True,
    )
    if state.is_failed():
        print(f"pipeline failed: {state.message}", file=sys.stderr)
        return 1
    result = state.result()
    print(result["table"])
    print(
        UI_HELP.format(
            prefect_home=prefect_home,
            bin=Path(sys.executable).parent,
            mlflow_uri=mlflow.get_tracking_uri(),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
