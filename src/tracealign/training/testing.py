"""Tiny, schema-valid training files for tests of any stage (no generator needed).

The rows carry a learnable signal: a topic sentence written in UPPER or lower case, the case
being the constraint. y1 satisfies x1 (upper) but not x2 (lower), y2 the reverse, so a few IOPO
steps on a tiny model can raise both the input and the output margins.
"""

from __future__ import annotations

from pathlib import Path

from tracealign.io import write_jsonl
from tracealign.schemas import ConstraintSpec, DPOPair, IOPOGroup, IOPORelations, SFTRow

_TOPICS = (
    "the sea",
    "a cat",
    "the moon",
    "green tea",
    "old trains",
    "a small garden",
    "winter",
    "a river",
)


def _case_constraint(upper: bool) -> ConstraintSpec:
    word = "uppercase" if upper else "lowercase"
    return ConstraintSpec(
        kind=f"change_case:{word}",
        dimension="Text Pattern",
        type="Format",
        params={},
        text=f"Write every letter in {word}.",
        verifier=f"change_case:{word}",
    )


def _prompt(topic: str, upper: bool) -> str:
    word = "uppercase" if upper else "lowercase"
    return f"Write one sentence about {topic}.\n# Constraints:\n1. Write every letter in {word}.\n"


def _response(topic: str, upper: bool) -> str:
    text = f"here is a short line about {topic}."
    return text.upper() if upper else text


def write_tiny_datasets(data_dir: Path | str, n: int = 8, split: str = "train") -> Path:
    """Write `<data_dir>/<split>/{sft,dpo,iopo}.jsonl` with `n` rows each; returns `data_dir`."""
    data_dir = Path(data_dir)
    sft, dpo, iopo = [], [], []
    for i in range(n):
        topic = _TOPICS[i % len(_TOPICS)] + ("" if i < len(_TOPICS) else f" {i}")
        upper = i % 2 == 0
        x1, y1 = _prompt(topic, upper), _response(topic, upper)
        x2, y2 = _prompt(topic, not upper), _response(topic, not upper)
        sft.append(
            SFTRow(id=f"sft-{i}", instruction_id=f"ins-{i}", split=split, prompt=x1, response=y1)
        )
        dpo.append(
            DPOPair(
                id=f"dpo-{i}",
                instruction_id=f"ins-{i}",
                split=split,
                prompt=x1,
                chosen=y1,
                rejected=y2,
                constraints=[_case_constraint(upper)],
                rejected_violations=[_case_constraint(upper).kind or ""],
            )
        )
        iopo.append(
            IOPOGroup(
                id=f"iopo-{i}",
                instruction_id=f"ins-{i}",
                split=split,
                x1=x1,
                y1=y1,
                x2=x2,
                y2=y2,
                x1_constraints=[_case_constraint(upper)],
                x2_constraints=[_case_constraint(not upper)],
                operation="REVISE",
                relations=IOPORelations(
                    y1_satisfies_x1=True,
                    y1_satisfies_x2=False,
                    y2_satisfies_x2=True,
                    y2_satisfies_x1=False,
                ),
            )
        )
    split_dir = data_dir / split
    write_jsonl(split_dir / "sft.jsonl", sft)
    write_jsonl(split_dir / "dpo.jsonl", dpo)
    write_jsonl(split_dir / "iopo.jsonl", iopo)
    return data_dir


def tiny_settings(
    tracking_uri: str,
    artifact_location: str | None = None,
    *,
    max_steps: int = 3,
    learning_rate: float = 1e-3,
    batch_size: int = 4,
    log_system_metrics: bool = False,
    system_metrics_interval_s: float = 1.0,
    log_checkpoint: bool = False,
    **train_overrides: object,
):
    """TrainingSettings for a tiny model and a few steps of every method, logging to `tracking_uri`."""
    from tracealign.training.settings import TrainingSettings

    optim = {
        "learning_rate": learning_rate,
        "max_steps": max_steps,
        "per_device_train_batch_size": batch_size,
    }
    train = {
        "max_length": 128,
        "save_steps": 2,
        "logging_steps": 1,
        "mlflow": {
            "tracking_uri": tracking_uri,
            "artifact_location": artifact_location,
            "system_metrics_interval_s": system_metrics_interval_s,
            "log_system_metrics": log_system_metrics,
            "log_checkpoint": log_checkpoint,
        },
        **{method: dict(optim) for method in ("sft", "dpo", "iopo", "reward")},
        **train_overrides,
    }
    model = {
        "vocab_size": 400,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "max_position_embeddings": 256,
    }
    return TrainingSettings.model_validate({"model": model, "train": train})
