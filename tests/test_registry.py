"""Registration and the promotion gate, on real MLflow (SQLite) with tiny checkpoints."""

from __future__ import annotations

import contextlib

import mlflow
import pytest
from mlflow import MlflowClient

from tracealign.tracking.registry import (
    Candidate,
    RegistrySettings,
    flatten,
    promotion_decision,
    register,
)
from tracealign.training.bootstrap import build_tiny_model

SETTINGS = RegistrySettings(model_name="tiny", gate_metric="eval/if", max_type_regression=0.05)


def _view(gate, **types):
    return {"eval/if": gate, **{f"eval/type/{k}": v for k, v in types.items()}}


@pytest.mark.parametrize(
    ("candidate", "champion", "promote", "why"),
    [
        (_view(0.3, content=0.5), None, True, "no champion yet"),
        (_view(0.4, content=0.5), _view(0.3, content=0.5), True, "beats the champion's 0.3000"),
        (_view(0.3, content=0.5), _view(0.3, content=0.5), False, "does not beat"),
        (_view(0.2, content=0.9), _view(0.3, content=0.1), False, "does not beat"),
        (
            _view(0.5, content=0.40, format=0.9),
            _view(0.3, content=0.50, format=0.5),
            False,
            "constraint type 'content' drops by 0.1000",
        ),
        (_view(0.5, content=0.46), _view(0.3, content=0.50), True, "beats"),  # within margin
        ({"eval/type/content": 0.5}, _view(0.3), False, "candidate has no eval/if"),
    ],
)
def test_promotion_decision(candidate, champion, promote, why):
    decided, reason = promotion_decision(candidate, champion, SETTINGS)
    assert decided is promote
    assert why in reason


def test_flatten_keeps_numbers_and_nulls():
    nested = {"eval": {"if": 0.5, "if_s": None, "type": {"content": 1}}, "note": "x", "ok": True}
    assert flatten(nested) == {"eval/if": 0.5, "eval/if_s": None, "eval/type/content": 1.0}


def test_register_gate_and_idempotence(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("reg", artifact_location=str(tmp_path / "art"))
    client = MlflowClient()
    first = build_tiny_model(tmp_path / "a")
    second = build_tiny_model(tmp_path / "b", hidden_size=48)

    def candidate(path, method, plain, aligned, content):
        metrics = {
            "plain": {"eval/if": plain, "eval/type/content": content},
            "la": {"eval/if": aligned, "eval/type/content": content},
        }
        return Candidate(method, path, metrics, "md5-data", {"alpha": 3.0})

    with mlflow.start_run(experiment_id=experiment):
        one = register(candidate(first, "sft", 0.2, 0.3, 0.5), SETTINGS, client)
        assert (one.version, one.alias, one.new, one.decoding) == (
            "1",
            "champion",
            True,
            "la",
        )
        again = register(candidate(first, "sft", 0.2, 0.3, 0.5), SETTINGS, client)
        assert (again.version, again.new, again.alias) == ("1", False, "champion")
        worse = register(candidate(second, "dpo", 0.25, 0.1, 0.9), SETTINGS, client)
        assert (worse.version, worse.alias) == ("2", "challenger")
        assert "does not beat" in worse.reason
    assert str(client.get_model_version_by_alias("tiny", "champion").version) == "1"
    version = client.get_model_version("tiny", "2")
    assert version.tags["method"] == "dpo" and version.tags["decoding"] == "plain"
    assert version.tags["dataset_version"] == "md5-data"
    assert "does not beat" in version.tags["promotion"]
    assert len(client.search_model_versions("name='tiny'")) == 2


def test_gate_compares_with_the_champion_as_it_is_inside_the_lock(tmp_path):
    """Another pipeline registers a better champion while this registration waits for the lock:
    the gate must see that champion (not the empty registry it saw before logging the model),
    and the aliases read back must be the server's."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("reg", artifact_location=str(tmp_path / "art"))
    client = MlflowClient()
    ours = Candidate("sft", build_tiny_model(tmp_path / "a"), {"plain": _view(0.4)}, "d", {})
    theirs = Candidate(
        "dpo", build_tiny_model(tmp_path / "b", hidden_size=48), {"plain": _view(0.5)}, "d", {}
    )
    held = []

    @contextlib.contextmanager
    def lock():
        # What the other pipeline did before it released the lock to us.
        held.append(register(theirs, SETTINGS, client))
        yield
        held.append("released")

    with mlflow.start_run(experiment_id=experiment):
        result = register(ours, SETTINGS, client, lock=lock)
    assert (held[0].version, held[0].alias, held[1]) == ("1", "champion", "released")
    assert (result.version, result.alias, result.new) == ("2", "challenger", True)
    assert "does not beat the champion's 0.5000" in result.reason
    assert result.aliases == {"champion": "1", "challenger": "2"}
    assert result.aliases == {
        a: str(v) for a, v in client.get_registered_model("tiny").aliases.items()
    }
