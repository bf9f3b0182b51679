"""Locks across processes and machines, held on the Prefect server.

Why on the server: pipelines run in different checkouts, on different workers; the one thing
they share is the Prefect server (and MLflow, which has no locks). A global concurrency limit
of 1 is a mutex whose slot is a lease: if the holder dies, the server frees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

LOCK_WAIT_S = 1800
"""How long a registration waits for another pipeline's registration of the same model."""


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@contextlib.contextmanager
def promotion_lock(model_name: str, held: dict[str, str]) -> Iterator[None]:
    """One registration of `model_name` at a time, across processes and machines: a Prefect
    global concurrency limit of 1 named after the model (created on first use). Two pipelines
    on one registry otherwise read the same champion and both move an alias. The slot is a
    lease the server frees if this process dies. `held` receives the lock's name and times."""
    name = f"mlflow-registry-{model_name}"
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    with concurrency(name, occupy=1, timeout_seconds=LOCK_WAIT_S, strict=True):
        held.update(name=name, acquired_at=utc_timestamp())
        try:
            yield
        finally:
            held["released_at"] = utc_timestamp()
