"""Reliability drills of the team deployment, against a real stack on this machine.

Three drills, with the servers of `tracealign.team.TeamStack` running (PostgreSQL, moto S3,
MLflow with basic auth, Prefect with the zombie automation of infra/prefect-automations.yaml):

worker-kill   Deploy `tracealign-pipeline/pipeline` (infra/prefect.yaml) from a checkout, start a
              process worker on the `cpu` pool and run the micro pipeline (SFT only) through the
              deployment. Kill it twice mid-SFT, retrying the same flow run after each:
              A. the worker dies: SIGKILL of its process group, then of the flow-run process
                 (it has a session of its own); DVC and the stage must die with it (lifeline),
                 nothing may outlive its parent.
              B. the host is lost: SIGKILL of every process of the run at once, leaves first, so
                 that none can report; the run's stage flow run, task runs and MLflow parent run
                 stay open until the retry closes them. A bare flow run killed alongside checks
                 that the zombie automation crashes what nobody retries.
              Then check from the servers: no Prefect run left open; one MLflow run per stage,
              FINISHED; the SFT run resumed twice (same run id, every step logged) and nested
              under the FINISHED parent run; one model version per checkpoint digest, aliases as
              reports/registry.json says; no second writer refused by a stage lock.
concurrent    Two pipeline runs started at once, each in its own checkout, against the same
              servers: their registrations must not overlap (Prefect global concurrency limit)
              and each registry.json must agree with the server or be explained by the other's
              later registration.
same-checkout Two deployment runs started at once in ONE checkout, which the deployment's
              concurrency limit (1, ENQUEUE) must serialise.

Every flow run of the drills heartbeats every HEARTBEAT_S seconds and the automation's window
is ZOMBIE_WINDOW_S (the team defaults, 180 s and 600 s, would make the drill wait 10 minutes).

    .venv/bin/python scripts/reliability_drills.py                 # all drills, temp dir
    .venv/bin/python scripts/reliability_drills.py --drills worker-kill --keep --workdir /tmp/d

The checkouts are clones of the repository's committed HEAD. Prints a JSON summary (figures
and the problems found); exit code 0 when no problem was found.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from team_local import (  # noqa: E402
    REPO_ROOT,
    _listening,
    _s3_keys,
    pipeline_env,
    prepare_checkout,
    report_summary,
    run_pipeline,
)

from tracealign.team import StackError, TeamStack  # noqa: E402
from tracealign.team.stack import DVC_BUCKET, MLFLOW_BUCKET  # noqa: E402

DEPLOYMENT = "tracealign-pipeline/pipeline"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
OPEN = ["RUNNING", "PENDING"]
# SFT long enough to be killed twice mid-run even on an idle machine (~0.1 s a step; micro saves
# a checkpoint every 2 steps).
SFT_STEPS = 120
HEARTBEAT_S = 30
ZOMBIE_WINDOW_S = 90
STAGE_LOCK_REFUSAL = "is already running ("
STAGE_EXIT_S = 30  # how long a stage may take to end its runs after its parent died
# A flow run on its own (no deployment, like the stage flows DVC starts), to be lost with the host.
BARE_FLOW = "drill-lost-with-host"
BARE_FLOW_CODE = f"""
import time
from prefect import flow

@flow(name={BARE_FLOW!r})
def wait():
    time.sleep(3600)

wait()
"""


class Prefect:
    """The Prefect server's REST API, as the stack's admin user."""

    def __init__(self, stack: TeamStack) -> None:
        user, _, password = stack.creds.prefect_auth.partition(":")
        self.http = httpx.Client(
            base_url=stack.prefect_api_url, auth=(user, password), timeout=30.0
        )

    def get(self, path: str) -> Any:
        reply = self.http.get(path)
        reply.raise_for_status()
        return reply.json()

    def post(self, path: str, body: dict) -> Any:
        reply = self.http.post(path, json=body)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def flow_run(self, run_id: str) -> dict:
        return self.get(f"/flow_runs/{run_id}")

    def flow_runs(self, flow_runs_filter: dict | None = None) -> list[dict]:
        flows = {f["id"]: f["name"] for f in self.post("/flows/filter", {"limit": 200})}
        body = {"limit": 200, "sort": "START_TIME_ASC", "flow_runs": flow_runs_filter or {}}
        return [
            {
                "id": r["id"],
                "flow": flows.get(r["flow_id"], "?"),
                "name": r["name"],
                "state": r["state_type"],
                "state_name": r["state_name"],
                "message": (r.get("state") or {}).get("message"),
                "run_count": r["run_count"],
                "deployment": bool(r.get("deployment_id")),
                "tags": r["tags"],
            }
            for r in self.post("/flow_runs/filter", body)
        ]

    def heartbeats(self, flow_run_id: str) -> int:
        body = {
            "filter": {
                "event": {"name": ["prefect.flow-run.heartbeat"]},
                "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
            },
            "limit": 50,
        }
        return int(self.post("/events/filter", body)["total"])

    def open_task_runs(self) -> list[dict]:
        body = {"task_runs": {"state": {"type": {"any_": OPEN}}}}
        return [
            {"name": t["name"], "state": t["state_name"], "flow_run": t["flow_run_id"]}
            for t in self.post("/task_runs/filter", body)
        ]

    def wait_for_flow_run(self, flow: str, timeout_s: float) -> dict:
        """The first Running flow run of `flow`, once there is one."""
        deadline = time.monotonic() + timeout_s
        while True:
            body = {
                "flows": {"name": {"any_": [flow]}},
                "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}},
            }
            if found := self.post("/flow_runs/filter", body):
                return found[0]
            if time.monotonic() > deadline:
                raise StackError(f"no Running flow run of {flow} after {timeout_s}s")
            time.sleep(1.0)

    def run_deployment(self, parameters: dict) -> str:
        deployment = self.get(f"/deployments/name/{DEPLOYMENT}")
        created = self.post(
            f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters}
        )
        return created["id"]

    def set_state(self, run_id: str, state_type: str, name: str, message: str) -> dict:
        body = {"state": {"type": state_type, "name": name, "message": message}, "force": True}
        return self.post(f"/flow_runs/{run_id}/set_state", body)

    def wait(self, run_id: str, until: set[str], timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.flow_run(run_id)
            if run["state_type"] in until:
                return run
            if time.monotonic() > deadline:
                raise StackError(f"flow run {run_id} still {run['state_name']} after {timeout_s}s")
            time.sleep(1.0)


def drill_env(stack: TeamStack, checkout: Path) -> dict[str, str]:
    """The pipeline's environment, with the drill's heartbeat (see ZOMBIE_WINDOW_S)."""
    return pipeline_env(stack, checkout) | {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}


def _cli(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise StackError(
            f"prefect {' '.join(argv)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return proc.stdout


class Worker:
    """`prefect worker start --pool cpu` in its own process group, output to a log file."""

    def __init__(self, checkout: Path, env: dict[str, str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.handle = log.open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("prefect")), "worker", "start", "--pool", "cpu"],
            cwd=checkout,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def tree(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def lose_worker(self) -> dict[str, Any]:
        """Drill A: SIGKILL the worker's process group, then the flow-run process if it outlived
        it (a session of its own). Its descendants must then end by themselves (a stage ends
        its Prefect and MLflow runs on the way out): whatever is still alive STAGE_EXIT_S later
        has outlived its parent; report it, then SIGKILL it by pid."""
        tree = {p.pid: (p, " ".join(p.cmdline()[:4])) for p in self.tree()}
        engines = [pid for pid, (p, _) in tree.items() if p.ppid() == self.process.pid]
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        time.sleep(3)
        outlived_worker = [cmd for p, cmd in tree.values() if _alive(p)]
        for pid in engines:
            with contextlib.suppress(psutil.NoSuchProcess):
                tree[pid][0].kill()
        engine_gone = time.monotonic()
        children = [p for pid, (p, _) in tree.items() if pid not in engines]
        while (alive := [p for p in children if _alive(p)]) and (
            time.monotonic() - engine_gone < STAGE_EXIT_S
        ):
            time.sleep(0.2)
        names = [tree[p.pid][1] for p in alive]
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.handle.close()
        return {
            "processes": len(tree),
            "outlived_the_worker_3s": outlived_worker,
            "children_gone_after_s": round(time.monotonic() - engine_gone, 1),
            "outlived_their_parent": names,
        }

    def lose_host(self, also: list[int]) -> dict[str, Any]:
        """Drill B: SIGKILL every process of the run at once, leaves first, so that none of them
        can report anything (no SIGTERM handling, no parent-death signal reaches a live one)."""
        tree = self.tree()
        depth = {p.pid: len(p.parents()) for p in tree}
        doomed = [
            *(psutil.Process(pid) for pid in also),
            *sorted(tree, key=lambda p: -depth[p.pid]),
        ]
        names = [" ".join(p.cmdline()[:4]) for p in doomed]
        for process in doomed:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        psutil.wait_procs(doomed, timeout=30)
        self.handle.close()
        return {"killed": names}

    def stop(self) -> None:
        if self.process.poll() is None:
            doomed = self.tree()
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
            for process in doomed:
                if process.is_running():
                    process.kill()
        if not self.handle.closed:
            self.handle.close()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def mlflow_view(stack: TeamStack) -> dict[str, Any]:
    """Every MLflow run (id, name, status, parent, top-level artifacts) and every model version."""
    from mlflow import MlflowClient

    os.environ.update(stack.client_env())
    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = []
    for run in client.search_runs(experiments, max_results=1000):
        history = client.get_metric_history(
            run.info.run_id, "train/loss"
        ) or client.get_metric_history(run.info.run_id, "loss")
        runs.append(
            {
                "id": run.info.run_id,
                "name": run.info.run_name,
                "status": run.info.status,
                "stage": run.data.tags.get("stage"),
                "parent": run.data.tags.get("mlflow.parentRunId"),
                "earlier_parents": run.data.tags.get("resumed.from_parents"),
                "closed_by": run.data.tags.get("closed_by"),
                "attempt": run.data.tags.get("prefect.flow_run_attempt"),
                "artifacts": sorted(a.path for a in client.list_artifacts(run.info.run_id)),
                "loss_steps": sorted({m.step for m in history}),
            }
        )
    models = []
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name='{model.name}'")
        models.append(
            {
                "name": model.name,
                "aliases": dict(model.aliases),
                "versions": {
                    v.version: {
                        "run_id": v.run_id,
                        "digest": next((t for k, t in v.tags.items() if "digest" in k), None),
                        "method": v.tags.get("method"),
                    }
                    for v in versions
                },
            }
        )
    return {"runs": runs, "models": models}


def _registry(checkout: Path) -> dict:
    path = checkout / "reports" / "registry.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _wait_for(predicate, timeout_s: float, what: str, poll_s: float = 0.2) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise StackError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(poll_s)
    return time.monotonic() - start


def setup_deployment(stack: TeamStack, checkout: Path, env: dict[str, str]) -> None:
    _cli(["work-pool", "create", "cpu", "--type", "process", "--overwrite"], checkout, env)
    _cli(
        ["--no-prompt", "deploy", "--prefect-file", "infra/prefect.yaml", "--name", "pipeline"],
        checkout,
        env,
    )
    automation = yaml.safe_load((checkout / "infra" / "prefect-automations.yaml").read_text())
    automation["trigger"]["within"] = ZOMBIE_WINDOW_S
    _cli(["automation", "create", "--from-json", json.dumps(automation)], checkout, env)


def _steps(runs_dir: Path) -> list[int]:
    return sorted(int(p.name.rpartition("-")[2]) for p in runs_dir.glob("checkpoint-*"))


def _retry(prefect: Prefect, run_id: str, why: str) -> dict[str, Any]:
    """What a person does in the UI: mark the run Crashed if it still shows Running (its
    machine is gone; the zombie automation would do it too, later), then Retry it."""
    run = prefect.flow_run(run_id)
    seen = {"state": run["state_name"], "message": (run["state"] or {}).get("message")}
    if run["state_type"] not in TERMINAL:
        prefect.set_state(run_id, "CRASHED", "Crashed", why)
        seen["marked_crashed_by_drill"] = True
    prefect.set_state(run_id, "SCHEDULED", "AwaitingRetry", f"retry: {why}")
    return seen


def worker_kill_drill(
    stack: TeamStack, workdir: Path, problems: list[str], report: dict[str, Any]
) -> None:
    """Lose the worker mid-SFT and retry; lose the host mid-SFT and retry; check."""
    checkout = workdir / "worker-kill" / "repo"
    env = drill_env(stack, checkout)
    prepare_checkout(stack, REPO_ROOT, checkout, env)
    setup_deployment(stack, checkout, env)
    prefect = Prefect(stack)
    logs = checkout.parent / "logs"
    runs_dir = checkout / "models" / ".runs" / "sft"
    workers = [Worker(checkout, env, logs / "worker-1.log")]
    bare: subprocess.Popen | None = None
    try:
        t0 = time.monotonic()
        run_id = prefect.run_deployment(
            {
                "profile": "micro",
                "methods": ["sft"],
                "push_data": True,
                "overrides": {"train.sft.max_steps": SFT_STEPS},
            }
        )
        report["flow_run_id"] = run_id
        stage_filter = {"tags": {"all_": [f"tracealign-pipeline:{run_id}"]}}

        # A: the worker (and its flow-run process) dies; the host lives on.
        report["A_first_checkpoint_after_s"] = round(
            _wait_for(lambda: _steps(runs_dir), 900, "an SFT checkpoint"), 1
        )
        report["A_checkpoints_at_kill"] = _steps(runs_dir)
        report["A_kill"] = workers[0].lose_worker()
        if report["A_kill"]["outlived_their_parent"]:
            problems.append(
                f"worker-kill: outlived their parent: {report['A_kill']['outlived_their_parent']}"
            )
        report["A_stage_runs_after_kill"] = [
            f"{r['flow']}:{r['state_name']}" for r in prefect.flow_runs(stage_filter)
        ]
        seen_stage_runs = {r["id"] for r in prefect.flow_runs(stage_filter)}
        newest = _steps(runs_dir)[-1:]
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_FLOW_CODE],
            cwd=checkout,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        report["A_retry"] = _retry(prefect, run_id, "worker lost")
        workers.append(Worker(checkout, env, logs / "worker-2.log"))

        # B: the host is lost during the retry's SFT, the bare flow run with it.
        def retried_sft_running() -> bool:
            running = prefect.flow_runs(stage_filter | {"state": {"type": {"any_": ["RUNNING"]}}})
            ours = [r for r in running if r["flow"] == "train" and r["id"] not in seen_stage_runs]
            return bool(ours) and _steps(runs_dir)[-1:] > newest

        _wait_for(retried_sft_running, 900, "the retry's SFT past its first checkpoint", 1.0)
        bare_run = prefect.wait_for_flow_run(BARE_FLOW, 120)
        report["B_checkpoints_at_kill"] = _steps(runs_dir)
        report["B_kill"] = workers[1].lose_host(also=[bare.pid])
        lost_at = datetime.now(UTC)
        time.sleep(2)
        report["B_left_open"] = [
            f"{r['flow']}/{r['name']}:{r['state_name']}"
            for r in prefect.flow_runs({"state": {"type": {"any_": OPEN}}})
        ]
        report["B_task_runs_left_open"] = prefect.open_task_runs()
        killed_at = time.monotonic()
        report["B_retry"] = _retry(prefect, run_id, "host lost")
        workers.append(Worker(checkout, env, logs / "worker-3.log"))
        final = prefect.wait(run_id, TERMINAL, 900)
        report["retry_to_end_s"] = round(time.monotonic() - killed_at, 1)
        report["total_s"] = round(time.monotonic() - t0, 1)
        report["final_state"] = final["state_name"]
        report["run_count"] = final["run_count"]
        if final["state_type"] != "COMPLETED":
            problems.append(f"worker-kill: pipeline flow run ended {final['state_name']}")

        report["heartbeats_received"] = {
            "pipeline": prefect.heartbeats(run_id),
            BARE_FLOW: prefect.heartbeats(bare_run["id"]),
        }
        # Nobody retries the bare flow run: the zombie automation must crash it.
        zombie = prefect.wait(bare_run["id"], TERMINAL, ZOMBIE_WINDOW_S + 4 * HEARTBEAT_S)
        crashed_at = datetime.fromisoformat(zombie["state"]["timestamp"])
        report["zombie_automation"] = {
            "state": zombie["state_name"],
            "message": zombie["state"]["message"],
            "after_host_loss_s": round((crashed_at - lost_at).total_seconds(), 1),
        }
        if zombie["state_type"] != "CRASHED" or "No heartbeat" not in (
            zombie["state"]["message"] or ""
        ):
            problems.append(f"worker-kill: zombie automation: {report['zombie_automation']}")
    finally:
        for worker in workers:
            worker.stop()
        if bare is not None and bare.poll() is None:
            bare.kill()

    report["prefect_flow_runs"] = prefect.flow_runs()
    stuck = [
        f"{r['flow']}/{r['name']}:{r['state_name']}"
        for r in report["prefect_flow_runs"]
        if r["state"] not in TERMINAL
    ]
    if stuck:
        problems.append(f"worker-kill: Prefect flow runs left open: {stuck}")
    if open_tasks := prefect.open_task_runs():
        problems.append(f"worker-kill: Prefect task runs left open: {open_tasks}")
    closed = [
        f"{r['flow']}/{r['name']}"
        for r in report["prefect_flow_runs"]
        if (r["message"] or "").startswith("Left open by an earlier attempt")
    ]
    report["closed_by_the_retry"] = closed
    if not closed:
        problems.append("worker-kill: the retry closed no stage run of the lost host's attempt")
    refusals = [
        line.strip()
        for log in logs.glob("worker-*.log")
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if STAGE_LOCK_REFUSAL in line
    ]
    report["stage_lock_refusals"] = refusals
    if refusals:
        problems.append(f"worker-kill: a second writer of a stage was started: {refusals[:2]}")

    view = mlflow_view(stack)
    report["mlflow_runs"] = [
        {k: r[k] for k in ("name", "status", "stage", "loss_steps", "artifacts", "attempt")}
        | {
            "id": r["id"][:8],
            "parent": (r["parent"] or "")[:8],
            "earlier_parents": [p[:8] for p in (r["earlier_parents"] or "").split(",") if p],
            "closed_by_retry": bool(r["closed_by"]),
        }
        for r in view["runs"]
    ]
    report["models"] = view["models"]
    report["registry_json"] = _registry(checkout)
    report["s3"] = {
        "mlflow_artifacts": len(_s3_keys(stack, MLFLOW_BUCKET)),
        "dvc_objects": len(_s3_keys(stack, DVC_BUCKET)),
    }
    parents = [r for r in view["runs"] if r["stage"] == "pipeline"]
    report["pipeline_parent_runs"] = [(r["id"][:8], r["attempt"], r["status"]) for r in parents]
    finished = [r["id"] for r in parents if r["status"] == "FINISHED"]
    if len(finished) != 1 or any(r["status"] not in {"FINISHED", "FAILED"} for r in parents):
        problems.append(f"worker-kill: pipeline parent runs {report['pipeline_parent_runs']}")
    stage_runs = [r for r in view["runs"] if r["stage"] != "pipeline"]
    duplicated = [n for n, c in Counter(r["name"] for r in stage_runs).items() if c > 1]
    if duplicated:
        problems.append(f"worker-kill: duplicated MLflow stage runs {duplicated}")
    not_finished = [(r["name"], r["status"]) for r in stage_runs if r["status"] != "FINISHED"]
    if not_finished:
        problems.append(f"worker-kill: MLflow runs not FINISHED: {not_finished}")
    orphaned = [r["name"] for r in stage_runs if r["parent"] not in finished]
    if orphaned:
        problems.append(f"worker-kill: stage runs not under the FINISHED parent run: {orphaned}")
    for sft in (r for r in stage_runs if r["name"] == "train-sft"):
        earlier = [p for p in (sft["earlier_parents"] or "").split(",") if p]
        if sft["loss_steps"][:1] != [1] or sft["loss_steps"][-1:] != [SFT_STEPS]:
            problems.append(f"worker-kill: SFT run logged steps {sft['loss_steps']}")
        if sorted(earlier) != sorted(r["id"] for r in parents if r["id"] not in finished):
            problems.append(f"worker-kill: SFT run's earlier parents {earlier} vs {parents}")
    report["registry_check"] = _check_registry(
        view, [report["registry_json"]], problems, "worker-kill"
    )


def _check_registry(
    view: dict, registries: list[dict], problems: list[str], drill: str
) -> dict[str, Any]:
    """registry.json against the server: each registration's read-back (inside its lock) shows
    the alias it set; registrations of the model never held the lock at once; an alias the
    server no longer gives to the version a registry.json names was moved by a later
    registration; the last registration's read-back is what the server says now."""
    if not view["models"]:
        problems.append(f"{drill}: no registered model")
        return {}
    [model] = view["models"]
    digests = [v["digest"] for v in model["versions"].values()]
    if len(digests) != len(set(digests)):
        problems.append(f"{drill}: {model['name']} has two versions of one checkpoint")
    claims = [
        (o["lock"]["acquired_at"], o["lock"]["released_at"], method, o)
        for reg in registries
        for method, o in reg.get("versions", {}).items()
        if o.get("lock")
    ]
    claims.sort(key=lambda c: c[0])
    for (_, released, *_), (acquired, *_) in zip(claims, claims[1:], strict=False):
        if acquired < released:
            problems.append(f"{drill}: two registrations held the lock at once: {claims}")
    for position, (_, _, method, o) in enumerate(claims):
        version, alias = str(o["version"]), o["alias"]
        if o["aliases_after"].get(alias) != version:
            problems.append(f"{drill}: {method} v{version} set {alias}, read back {o}")
        later = {c[3]["alias"] for c in claims[position + 1 :]}
        if model["aliases"].get(alias) != version and alias not in later:
            problems.append(
                f"{drill}: registry.json says {method} v{version} is {alias}, the server's "
                f"{alias} is v{model['aliases'].get(alias)} and no later registration set it"
            )
    if claims and claims[-1][3]["aliases_after"] != model["aliases"]:
        problems.append(f"{drill}: last read-back {claims[-1][3]['aliases_after']} vs server")
    if "champion" not in model["aliases"]:
        problems.append(f"{drill}: no champion")
    return {
        "server_aliases": model["aliases"],
        "registrations_in_lock_order": [
            {"version": o["version"], "alias": o["alias"], "lock": [a[11:23], r[11:23]]}
            for a, r, _, o in claims
        ],
    }


def concurrent_drill(
    stack: TeamStack, workdir: Path, problems: list[str], report: dict[str, Any]
) -> None:
    """Two pipelines at once in two checkouts, against the same servers."""
    before = {r["id"] for r in mlflow_view(stack)["runs"]}
    checkouts = [workdir / f"concurrent-{i}" / "repo" for i in (1, 2)]
    envs = [drill_env(stack, c) for c in checkouts]
    for checkout, env in zip(checkouts, envs, strict=True):
        prepare_checkout(stack, REPO_ROOT, checkout, env)
    args = ["--profile", "micro", "--push-data", "--methods", "sft"]
    results: dict[int, Any] = {}

    def one(i: int) -> None:
        try:
            results[i] = round(run_pipeline(checkouts[i], envs[i], args, 900), 1)
        except (StackError, subprocess.TimeoutExpired) as exc:
            results[i] = f"error: {str(exc)[-1500:]}"

    start = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report["two_checkouts_wall_s"] = round(time.monotonic() - start, 1)
    report["pipeline_s"] = [results.get(0), results.get(1)]
    for i, value in results.items():
        if not isinstance(value, float):
            problems.append(f"concurrent: pipeline {i + 1} failed: {value}")

    view = mlflow_view(stack)
    new = [r for r in view["runs"] if r["id"] not in before]
    parents = [r for r in new if r["stage"] == "pipeline"]
    report["parent_runs"] = [{"id": p["id"][:8], "status": p["status"]} for p in parents]
    children = {
        p["id"][:8]: sorted(f"{r['name']}:{r['status']}" for r in new if r["parent"] == p["id"])
        for p in parents
    }
    report["children_by_parent"] = children
    if len(parents) != 2:
        problems.append(f"concurrent: {len(parents)} new parent runs, expected 2")
    for parent, kids in children.items():
        if not kids or any(not k.endswith(":FINISHED") for k in kids):
            problems.append(f"concurrent: parent {parent} children {kids}")
    no_artifacts = [r["name"] for r in new if r["stage"] != "pipeline" and not r["artifacts"]]
    report["stage_runs_without_artifacts"] = no_artifacts
    registries = [_registry(c) for c in checkouts]
    report["registry_json"] = registries
    report["models"] = view["models"]
    report["versions_by_run"] = {
        v["run_id"][:8]: v["digest"]
        for m in view["models"]
        for v in m["versions"].values()
        if v["run_id"] in {r["id"] for r in new}
    }
    report["registry_check"] = _check_registry(view, registries, problems, "concurrent")
    digests = [(c / "models" / "sft" / "config.json").is_file() for c in checkouts]
    report["each_checkout_has_its_model"] = digests
    report["s3"] = {
        "mlflow_artifacts": len(_s3_keys(stack, MLFLOW_BUCKET)),
        "dvc_objects": len(_s3_keys(stack, DVC_BUCKET)),
    }


def same_checkout_drill(
    stack: TeamStack, workdir: Path, problems: list[str], report: dict[str, Any]
) -> None:
    """Two runs of the deployment at once in the worker-kill drill's checkout: the second must
    wait (AwaitingConcurrencySlot) until the first ends."""
    checkout = workdir / "worker-kill" / "repo"
    env = drill_env(stack, checkout)
    prefect = Prefect(stack)
    params = {"profile": "micro", "methods": ["sft"], "overrides": {"train.seed": 7}}
    worker = Worker(checkout, env, checkout.parent / "logs" / "worker-same.log")
    try:
        start = time.monotonic()
        ids = [prefect.run_deployment(params), prefect.run_deployment(params)]
        seen: dict[str, set[str]] = {i: set() for i in ids}
        overlap = False
        while True:
            states = {i: prefect.flow_run(i) for i in ids}
            for i, run in states.items():
                seen[i].add(run["state_name"])
            running = [i for i, r in states.items() if r["state_type"] == "RUNNING"]
            overlap = overlap or len(running) > 1
            if all(r["state_type"] in TERMINAL for r in states.values()):
                break
            if time.monotonic() - start > 900:
                raise StackError(f"same-checkout runs not done: {states}")
            time.sleep(0.5)
        report["wall_s"] = round(time.monotonic() - start, 1)
        report["states_seen"] = {i[:8]: sorted(s) for i, s in seen.items()}
        report["final"] = {i[:8]: r["state_name"] for i, r in states.items()}
        report["ran_at_once"] = overlap
        ordered = sorted(states.values(), key=lambda r: r["start_time"] or "")
        report["second_started_after_first_ended"] = (
            ordered[1]["start_time"] >= ordered[0]["end_time"]
        )
        if overlap or not report["second_started_after_first_ended"]:
            problems.append("same-checkout: two deployment runs overlapped")
        if any(r["state_type"] != "COMPLETED" for r in states.values()):
            problems.append(f"same-checkout: {report['final']}")
    finally:
        worker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, help="stack data, checkouts, logs (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--summary", type=Path, help="also write the JSON summary here")
    parser.add_argument(
        "--drills",
        nargs="+",
        default=["worker-kill", "concurrent", "same-checkout"],
        choices=["worker-kill", "concurrent", "same-checkout"],
    )
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="tracealign-drills-"))).resolve()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    summary: dict[str, Any] = {"workdir": str(workdir)}
    problems: list[str] = []
    stack = TeamStack(workdir / "stack")
    started = time.monotonic()
    try:
        stack.start()
        summary["startup_s"] = round(time.monotonic() - started, 1)
        drills = {
            "worker-kill": worker_kill_drill,
            "concurrent": concurrent_drill,
            "same-checkout": same_checkout_drill,
        }
        for name in args.drills:
            if name == "same-checkout" and "worker-kill" not in args.drills:
                checkout = workdir / "worker-kill" / "repo"
                env = drill_env(stack, checkout)
                prepare_checkout(stack, REPO_ROOT, checkout, env)
                setup_deployment(stack, checkout, env)
            drill_start = time.monotonic()
            try:
                drills[name](stack, workdir, problems, summary.setdefault(name, {}))
            except (StackError, subprocess.TimeoutExpired, httpx.HTTPError) as exc:
                problems.append(f"{name}: {exc}")
            summary.setdefault(name, {})["drill_s"] = round(time.monotonic() - drill_start, 1)
    except (StackError, KeyboardInterrupt) as exc:
        problems.append(f"stack: {exc}")
    finally:
        try:
            stack.stop()
        except StackError as exc:
            problems.append(str(exc))
        summary["total_s"] = round(time.monotonic() - started, 1)
        summary["ports_closed"] = all(not _listening(s.port) for s in stack.servers())
        summary["problems"] = problems
        print(report_summary(summary, args.summary))
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if not problems and summary["ports_closed"] else 1


if __name__ == "__main__":
    sys.exit(main())
