"""infra/prefect.yaml against a real Prefect server: every deployment is created as configured,
and a process worker executes one run of the `generate` deployment in the checkout it was
deployed from. Then recovery from lost processes on the same server: the zombie automation of
infra/prefect-automations.yaml, a retried pipeline closing what its killed attempt left open,
and the registration lock.

The project is copied (working tree as it is now) into a temporary git repository, so the run's
DVC versioning touches only the copy. The server binds to 127.0.0.1 on a free port and keeps
its database in a per-module PREFECT_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
import yaml

from flows._prefect_server import local_prefect_server
from tests.conftest import REPO

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
RUN_TIMEOUT_S = 240
DEPLOYMENTS = {
    # name: (flow name, work pool, work queue)
    "pipeline": ("tracealign-pipeline", "cpu", "default"),
    "pipeline-gpu": ("tracealign-pipeline", "gpu", "training"),
    "generate": ("generate", "cpu", "default"),
    "train": ("train", "gpu", "training"),
    "evaluate": ("evaluate", "cpu", "default"),
}
TINY_DATA = {"seed": 5, "n_train": 6, "n_eval": 3, "n_eval_ood": 2, "n_cgpo": 1, "workers": 1}


def _snapshot_project(dest: Path) -> None:
    """Copy the files git sees (tracked, plus untracked ones it does not ignore) and commit them
    in a fresh repository at `dest`, so DVC there has a git repository of its own."""
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in names:
        if not raw:
            continue
        name = raw.decode()
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    git_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=dest, env=git_env, check=True, capture_output=True)


class Prefect:
    """The CLI and the REST API of one local server."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PREFECT_API_URL": url,
            "PREFECT_HOME": str(home),
            "PREFECT_CLI_PROMPT": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            "HF_HUB_OFFLINE": "1",
        }

    def cli(self, *args: str, cwd: Path, timeout: float = 180) -> str:
        done = subprocess.run(
            [PREFECT, *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"prefect {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done.stdout

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> tuple[Prefect, Path, dict[str, dict[str, Any]]]:
    """A server, the two work pools, and every deployment of infra/prefect.yaml, deployed from
    the root of a copy of the project as the docs say."""
    project = tmp_path_factory.mktemp("project").resolve()
    _snapshot_project(project)
    home = tmp_path_factory.mktemp("prefect-home")
    with local_prefect_server(home) as url:
        prefect = Prefect(url, home)
        prefect.cli("work-pool", "create", "cpu", "--type", "process", cwd=project)
        prefect.cli("work-pool", "create", "gpu", "--type", "process", cwd=project)
        prefect.cli("work-pool", "set-concurrency-limit", "gpu", "1", cwd=project)
        prefect.cli("deploy", "--prefect-file", "infra/prefect.yaml", "--all", cwd=project)
        deployments = {d["name"]: d for d in prefect.post("/deployments/filter", {})}
        yield prefect, project, deployments


def test_every_deployment_is_created_on_its_pool(deployed):
    prefect, project, deployments = deployed
    assert set(deployments) == set(DEPLOYMENTS)
    flows = {flow["id"]: flow["name"] for flow in prefect.post("/flows/filter", {})}
    for name, (flow_name, pool, queue) in DEPLOYMENTS.items():
        deployment = deployments[name]
        assert flows[deployment["flow_id"]] == flow_name, name
        assert (deployment["work_pool_name"], deployment["work_queue_name"]) == (pool, queue)
        # Runs start in the checkout the deployment was made from, wherever the worker runs.
        assert deployment["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(project)}}
        ], name
        # Runs of one deployment share that checkout: one at a time, the rest wait in line.
        assert deployment["global_concurrency_limit"]["limit"] == 1, name
        assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE", name


def test_training_goes_to_the_gpu_pool_one_run_at_a_time(deployed):
    prefect, _, deployments = deployed
    train = deployments["train"]
    assert train["work_pool_name"] == "gpu"
    assert "method" not in train["parameters"]  # every run names the method it trains
    assert "method" in train["parameter_openapi_schema"]["required"]
    assert train["job_variables"]["env"]["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert prefect.get("/work_pools/gpu")["concurrency_limit"] == 1


def test_training_fits_the_kubernetes_gpu_pool_template(deployed):
    """The server checks job variables against the pool's base job template: the training
    deployment must also be accepted by a Kubernetes pool built from infra/k8s/."""
    prefect, project, _ = deployed
    template = project / "infra" / "k8s" / "gpu-work-pool.json"
    prefect.cli(
        "work-pool", "create", "gpu-k8s", "--type", "kubernetes", "--base-job-template",
        str(template), cwd=project,
    )  # fmt: skip
    prefect.cli(
        "deploy", "--prefect-file", "infra/prefect.yaml", "--name", "train", "--pool", "gpu-k8s",
        cwd=project,
    )  # fmt: skip
    [train] = prefect.post("/deployments/filter", {"deployments": {"name": {"any_": ["train"]}}})
    assert train["work_pool_name"] == "gpu-k8s"
    assert train["job_variables"]["env"]["TOKENIZERS_PARALLELISM"] == "false"
    assert prefect.get("/work_pools/gpu-k8s")["type"] == "kubernetes"


def test_pipeline_schedule_is_nightly_and_off(deployed):
    _, _, deployments = deployed
    pipeline = deployments["pipeline"]
    [schedule] = pipeline["schedules"]
    assert schedule["active"] is False
    assert schedule["slug"] == "nightly"
    assert schedule["schedule"]["cron"] == "0 3 * * *"
    assert schedule["schedule"]["timezone"] == "UTC"
    assert pipeline["parameters"]["methods"] == ["sft", "dpo", "iopo", "cgpo"]
    assert pipeline["parameters"]["profile"] == "default"
    assert deployments["pipeline-gpu"]["schedules"] == []


def test_parameters_unknown_to_the_flow_are_rejected(deployed):
    prefect, project, deployments = deployed
    with pytest.raises(AssertionError, match="n_train"):
        prefect.cli("deployment", "run", "generate/generate", "--param", "n_train=3", cwd=project)
    runs = prefect.post(
        "/flow_runs/filter",
        {"flow_runs": {"deployment_id": {"any_": [deployments["generate"]["id"]]}}},
    )
    assert runs == []


def test_a_process_worker_runs_generate_in_the_checkout(deployed, tmp_path):
    prefect, project, deployments = deployed
    params = tmp_path / "tiny-params.yaml"
    params.write_text(yaml.safe_dump({"data": TINY_DATA}), encoding="utf-8")
    recorded_before = (project / "data.dvc").read_text(encoding="utf-8")

    prefect.cli(
        "deployment",
        "run",
        "generate/generate",
        "--param",
        f"params={params}",
        "--param",
        "out=data",
        cwd=project,
    )
    [run] = prefect.post(
        "/flow_runs/filter",
        {"flow_runs": {"deployment_id": {"any_": [deployments["generate"]["id"]]}}},
    )
    # The run's parameters: the deployment's defaults with the two given on the command line.
    assert run["parameters"] == {"params": str(params), "out": "data", "push_remote": False}

    # The worker starts elsewhere: only the deployment's pull step can put the run in `project`.
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "cpu", "--type", "process", "--run-once"],
            cwd=worker_dir,
            env=prefect.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            state = _wait_for_terminal_state(prefect, run["id"], worker, RUN_TIMEOUT_S)
        finally:
            _stop(worker)
    log_text = log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
    assert state["type"] == "COMPLETED", f"{state}\n{log_text}"

    # The data was generated into the checkout and recorded there as a new DVC version.
    for split in ("train", "eval", "eval_ood"):
        assert (project / "data" / split / "instructions.jsonl").is_file(), split
    dvc_file = yaml.safe_load((project / "data.dvc").read_text(encoding="utf-8"))
    assert (project / "data.dvc").read_text(encoding="utf-8") != recorded_before
    assert dvc_file["meta"]["n_train"] == TINY_DATA["n_train"]
    assert not (worker_dir / "data").exists()


def _wait_for_terminal_state(
    prefect: Prefect, run_id: str, worker: subprocess.Popen, timeout_s: float
) -> dict[str, Any]:
    """Poll the flow run until it is final; give up after `timeout_s` or when the worker exits
    and the run has not moved past Scheduled (then nothing will pick it up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = prefect.get(f"/flow_runs/{run_id}")["state"]
        if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return state
        if worker.poll() is not None and state["type"] in {"SCHEDULED", "PENDING"}:
            return state
        if time.monotonic() > deadline:
            return state
        time.sleep(1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# Recovery from lost processes, against the same server.


def _flow_run(prefect: Prefect, flow: str, state: str, tags: list[str] | None = None) -> str:
    flow_id = prefect.post("/flows/", {"name": flow})["id"]
    body = {"flow_id": flow_id, "tags": tags or [], "state": {"type": state}}
    return prefect.post("/flow_runs/", body)["id"]


def test_zombie_automation_crashes_a_run_whose_heartbeats_stop(deployed):
    """infra/prefect-automations.yaml is accepted by the server, and does what it says: here
    with a 10 s window (Prefect's least) on one flow run instead of 600 s on every one."""
    from prefect.events.schemas.automations import AutomationCore

    prefect, project, _ = deployed
    prefect.cli(
        "automation", "create", "--from-file", "infra/prefect-automations.yaml", cwd=project
    )
    [created] = prefect.post("/automations/filter", {})
    assert created["name"] == "tracealign-crash-zombie-flow-runs" and created["enabled"]
    assert created["trigger"]["within"] == 600.0

    run_id = _flow_run(prefect, "zombie", "RUNNING")
    automation = yaml.safe_load((project / "infra" / "prefect-automations.yaml").read_text())
    automation["name"] = "zombie-test"
    automation["trigger"].update(
        within=10, match={"prefect.resource.id": f"prefect.flow-run.{run_id}"}
    )
    body = AutomationCore.model_validate(automation).model_dump(mode="json")  # as the CLI does
    short = prefect.post("/automations/", body)["id"]
    try:
        heartbeat = {
            "id": str(uuid.uuid4()),
            "occurred": datetime.now(UTC).isoformat(),
            "event": "prefect.flow-run.heartbeat",
            "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"},
        }
        httpx.post(f"{prefect.url}/events", json=[heartbeat], timeout=30).raise_for_status()
        deadline = time.monotonic() + 60
        while (state := prefect.get(f"/flow_runs/{run_id}")["state"])["type"] == "RUNNING":
            assert time.monotonic() < deadline, "the automation never crashed the run"
            time.sleep(1)
        assert state["type"] == "CRASHED" and "No heartbeat" in state["message"]
    finally:
        httpx.delete(f"{prefect.url}/automations/{short}", timeout=30)


def test_a_retried_pipeline_closes_what_its_killed_attempt_left_open(deployed, tmp_path):
    from prefect import flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows._stage import pipeline_tag
    from tasks.attempts import close_earlier_attempts

    prefect, _, _ = deployed
    pipeline = _flow_run(prefect, "tracealign-pipeline", "RUNNING")
    stage = _flow_run(prefect, "train", "RUNNING", [pipeline_tag(pipeline)])
    done = _flow_run(prefect, "validate", "COMPLETED", [pipeline_tag(pipeline)])
    other = _flow_run(prefect, "train", "RUNNING", [pipeline_tag(str(uuid.uuid4()))])
    dvc_task, train_task = (
        prefect.post(
            "/task_runs/",
            {"flow_run_id": run, "task_key": key, "dynamic_key": "0", "name": f"{key}-0",
             "state": {"type": "RUNNING"}},
        )["id"]
        for run, key in ((pipeline, "dvc"), (stage, "train"))
    )  # fmt: skip
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("attempts")
    client = mlflow.MlflowClient()
    killed = client.create_run(experiment, tags={"prefect.flow_run_id": pipeline}).info.run_id
    unrelated = client.create_run(experiment, tags={"prefect.flow_run_id": other}).info.run_id

    @flow
    def attempt(number: int) -> dict[str, int]:
        return close_earlier_attempts(pipeline, number, experiment)

    with temporary_settings({PREFECT_API_URL: prefect.url}):
        assert attempt(1) == {"flow_runs": 0, "task_runs": 0, "mlflow_runs": 0}
        assert prefect.get(f"/flow_runs/{stage}")["state"]["type"] == "RUNNING"
        assert attempt(2) == {"flow_runs": 1, "task_runs": 2, "mlflow_runs": 1}

    state = prefect.get(f"/flow_runs/{stage}")["state"]
    assert state["type"] == "CRASHED"
    assert pipeline in state["message"] and "attempt 2" in state["message"]
    for task_run in (dvc_task, train_task):
        assert prefect.get(f"/task_runs/{task_run}")["state"]["type"] == "CRASHED"
    assert prefect.get(f"/flow_runs/{done}")["state"]["type"] == "COMPLETED"
    assert prefect.get(f"/flow_runs/{other}")["state"]["type"] == "RUNNING"
    assert client.get_run(killed).info.status == "FAILED"
    assert "attempt 2" in client.get_run(killed).data.tags["closed_by"]
    assert client.get_run(unrelated).info.status == "RUNNING"


def test_promotion_lock_serialises_registrations_across_processes(deployed):
    """The register flow's lock is a Prefect global concurrency limit: a registration in
    another process waits until the first one is done."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.locks import promotion_lock

    prefect, _, _ = deployed
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, time\n"
            "from tasks.locks import promotion_lock\n"
            "held = {}\n"
            "with promotion_lock('lock-test', held):\n"
            "    print('held', flush=True); time.sleep(3)\n"
            "print(json.dumps(held), flush=True)\n",
        ],
        cwd=REPO,
        env=prefect.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        second: dict[str, str] = {}
        with (
            temporary_settings({PREFECT_API_URL: prefect.url}),
            promotion_lock("lock-test", second),
        ):
            pass
        first = json.loads(holder.stdout.readline())
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert first["name"] == second["name"] == "mlflow-registry-lock-test"
    assert first["released_at"] <= second["acquired_at"]
    limits = {c["name"]: c for c in prefect.post("/v2/concurrency_limits/filter", {})}
    assert (limits[second["name"]]["limit"], limits[second["name"]]["active_slots"]) == (1, 0)
