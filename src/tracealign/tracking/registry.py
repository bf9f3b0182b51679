"""Model registration with a promotion gate: one registered model, aliases `champion` and
`challenger` (MLflow stages are deprecated).

Every evaluated checkpoint becomes a version, tagged with its method, the decoding that scored
best on the gate metric (plain or Linear Alignment, with alpha), the dataset version and its
metrics. The `champion` alias moves to a candidate only when it beats the current champion on
the gate metric and regresses no constraint type by more than the allowed margin; otherwise the
candidate gets `challenger` and the reason is recorded on the version. A checkpoint already
registered (same content digest) is not registered again. Concurrent registrations (two
pipelines on one registry) are serialised by a lock the caller passes, so that each gate sees
the champion as the previous registration left it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field

from tracealign.tracking.dataset_version import content_hash

CHAMPION = "champion"
CHALLENGER = "challenger"
DECODINGS = ("plain", "la")
"""Decoding keys of the evaluation metrics.json: plain decoding and Linear Alignment."""


class RegistrySettings(BaseModel):
    """The `register:` section of params.yaml."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = "tracealign"
    gate_metric: str = Field("eval/if", description="metric path within one decoding")
    max_type_regression: float = Field(
        0.05, ge=0.0, description="largest allowed drop of any constraint type's satisfaction"
    )
    type_prefix: str = "eval/type/"
    pip_requirements: list[str] = Field(
        default_factory=lambda: ["torch", "transformers", "safetensors", "tokenizers"]
    )


@dataclass
class Candidate:
    """An evaluated checkpoint: per-decoding flat metrics, e.g. metrics["plain"]["eval/if"]."""

    method: str
    checkpoint_dir: Path
    metrics: dict[str, dict[str, float | None]]
    dataset_version: str
    linear_alignment: dict[str, Any] = field(default_factory=dict)

    def best_decoding(self, gate_metric: str) -> str:
        scores = {d: self.metrics.get(d, {}).get(gate_metric) for d in DECODINGS}
        plain, aligned = scores["plain"], scores["la"]
        if aligned is not None and (plain is None or aligned > plain):
            return "la"
        return "plain"


@dataclass
class Registration:
    version: str
    alias: str | None
    reason: str
    new: bool
    decoding: str
    aliases: dict[str, str] = field(default_factory=dict)
    """The registered model's aliases (alias -> version) as read back from the server right
    after this registration, still inside the lock."""


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float | None]:
    """Nested metrics.json -> {"eval/if": 0.4, "eval/type/content": 0.7, ...}."""
    flat: dict[str, float | None] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        elif value is None or isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = None if value is None else float(value)
    return flat


def _gate_view(metrics: dict[str, float | None], settings: RegistrySettings) -> dict[str, float]:
    keep = {settings.gate_metric}
    keep |= {k for k in metrics if k.startswith(settings.type_prefix)}
    return {k: v for k, v in metrics.items() if k in keep and v is not None}


def promotion_decision(
    candidate: dict[str, float], champion: dict[str, float] | None, settings: RegistrySettings
) -> tuple[bool, str]:
    """(promote?, why) from the gate views of the candidate and the current champion."""
    gate = settings.gate_metric
    if champion is None:
        return True, "no champion yet"
    if gate not in candidate:
        return False, f"candidate has no {gate}"
    if gate in champion and candidate[gate] <= champion[gate]:
        return False, (
            f"{gate} {candidate[gate]:.4f} does not beat the champion's {champion[gate]:.4f}"
        )
    regressions = {
        name.removeprefix(settings.type_prefix): champion[name] - value
        for name, value in candidate.items()
        if name.startswith(settings.type_prefix)
        and name in champion
        and champion[name] - value > settings.max_type_regression
    }
    if regressions:
        worst = max(regressions, key=regressions.get)  # type: ignore[arg-type]
        return False, (
            f"{gate} improves but constraint type '{worst}' drops by "
            f"{regressions[worst]:.4f} (> {settings.max_type_regression})"
        )
    before = f"{champion[gate]:.4f}" if gate in champion else "n/a"
    return True, f"{gate} {candidate[gate]:.4f} beats the champion's {before}"


def register(
    candidate: Candidate,
    settings: RegistrySettings,
    client: MlflowClient | None = None,
    lock: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Registration:
    """Register `candidate` (inside the active MLflow run) and apply the promotion gate.

    `lock()` is held from the duplicate check to reading the aliases back: the gate compares
    with the champion as it is while no other registration can move an alias in between
    (the register flow passes a Prefect global concurrency limit; the library stays
    orchestrator-free). Logging the model, the slow part, happens before, outside the lock.
    """
    client = client or MlflowClient()
    name = settings.model_name
    digest = content_hash(candidate.checkpoint_dir)
    decoding = candidate.best_decoding(settings.gate_metric)
    existing = _version_with_digest(client, name, digest)
    if existing is not None:
        return _already_registered(client, existing, decoding)

    view = _gate_view(candidate.metrics.get(decoding, {}), settings)
    model_uri = _log_model(candidate, settings)
    tags = {
        "method": candidate.method,
        "decoding": decoding,
        "linear_alignment": (
            json.dumps(candidate.linear_alignment, sort_keys=True) if decoding == "la" else "off"
        ),
        "dataset_version": candidate.dataset_version,
        "checkpoint_digest": digest,
        "gate_metrics": json.dumps(view, sort_keys=True),
    }
    for dec in DECODINGS:
        for metric, value in candidate.metrics.get(dec, {}).items():
            if value is not None and metric.count("/") <= 2:
                tags[f"metric.{dec}/{metric}"] = f"{value:.6g}"
    with lock():
        existing = _version_with_digest(client, name, digest)  # by a concurrent run meanwhile
        if existing is not None:
            return _already_registered(client, existing, decoding)
        champion = _champion(client, name)
        champion_view = json.loads(champion.tags.get("gate_metrics", "{}")) if champion else None
        promote, reason = promotion_decision(view, champion_view, settings)
        version = mlflow.register_model(model_uri, name, tags={**tags, "promotion": reason})
        alias = CHAMPION if promote else CHALLENGER
        client.set_registered_model_alias(name, alias, version.version)
        client.update_model_version(
            name, version.version, description=f"{candidate.method} ({decoding}): {reason}"
        )
        aliases = model_aliases(name, client)
    return Registration(str(version.version), alias, reason, True, decoding, aliases)


def _log_model(candidate: Candidate, settings: RegistrySettings) -> str:
    """Log the checkpoint as a transformers model of the active run; return its model URI."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # An absolute path: MLflow looks a relative one ("models/sft") up on the Hub as a repo id
    # for its model card, retrying for ~40 s per model when the Hub is unreachable.
    checkpoint = Path(candidate.checkpoint_dir).resolve()
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    info = mlflow.transformers.log_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        name="model",
        task="text-generation",
        pip_requirements=settings.pip_requirements,
    )
    return info.model_uri


def _already_registered(client: MlflowClient, existing, decoding: str) -> Registration:
    alias = next(iter(existing.aliases), None) if existing.aliases else None
    return Registration(
        str(existing.version),
        alias,
        "already registered",
        False,
        existing.tags.get("decoding", decoding),
        model_aliases(existing.name, client),
    )


def model_aliases(name: str, client: MlflowClient | None = None) -> dict[str, str]:
    """The registered model's aliases on the server now, alias -> version."""
    model = (client or MlflowClient()).get_registered_model(name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def _champion(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _version_with_digest(client: MlflowClient, name: str, digest: str):
    try:
        found = client.search_model_versions(f"name='{name}' and tags.checkpoint_digest='{digest}'")
    except MlflowException:
        return None
    if not found:
        return None
    version = found[0]
    return client.get_model_version(name, version.version)  # search omits aliases
