"""Rule verification for the validator: each (constraint, response) checked once.

The same text is checked against the same constraints many times over in a dataset: an
instruction's SFT response is its DPO chosen response and its IOPO y1, and x2 shares all but one
constraint with x1. Verifying each constraint of each distinct response once (a memo per response
within a row, and a table of whole verdicts across files keyed by a digest of constraints and
response) halves the work without trusting anything the data says about itself: a response or a
constraint that differs by one byte has a different key and is verified afresh.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracealign.constraints import REGISTRY

ItemVerdicts = tuple[bool | None, ...]
"""One verdict per constraint, in order: True, False, or None (no rule verifier can decide)."""

RowVerdict = tuple[bool | None, tuple[str, ...]]
"""(every rule verifier passes, the kinds that fail); (None, ()) when the row cannot be verified
(constraints malformed or naming an unknown verifier, response missing, a judge-only constraint):
never counted as a pass."""

UNVERIFIABLE: RowVerdict = (None, ())


def constraint_items(raw: Any) -> list[dict[str, Any]] | None:
    """The constraint dicts of a row, or None when they cannot be verified (not a non-empty list
    of objects with object `params`). The suites check labels and counts separately."""
    if not isinstance(raw, list) or not raw:
        return None
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("params", {}), dict):
            return None
    return raw


def digest(constraints: bytes, response: str) -> bytes:
    """Key of a whole verdict: the serialised constraints and the response, byte for byte."""
    hasher = hashlib.blake2b(constraints, digest_size=16)
    hasher.update(b"\x00")
    hasher.update(response.encode("utf-8", "surrogatepass"))
    return hasher.digest()


def _check_item(item: dict[str, Any], response: str) -> bool | None:
    verifier = item.get("verifier")
    if not isinstance(verifier, str) or verifier not in REGISTRY:
        return None  # judge-only, or a verifier this registry does not know: unverifiable
    try:
        return REGISTRY.get(verifier).verify(response, item.get("params") or {}).passed
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None  # parameters the verifier cannot use


@dataclass
class RuleChecks:
    """Verifies constraints against responses, counting claims checked and verifier calls.

    A call with `share=True` looks its verdicts up in `known` (`digest(constraints, response)`
    -> item verdicts computed elsewhere: another file's rows, in another process) and records
    those it computes in `learned`, for the caller to pass on.
    """

    known: dict[bytes, ItemVerdicts] = field(default_factory=dict)
    learned: dict[bytes, ItemVerdicts] = field(default_factory=dict)
    claims: int = 0
    """(constraints, response) pairs checked, whether computed or found in `known`."""
    calls: int = 0
    """Verifier calls actually made."""

    def items(
        self,
        items: list[dict[str, Any]],
        response: str,
        memo: dict[bytes, bool | None] | None = None,
        *,
        serialised: bytes | None = None,
        share: bool = False,
    ) -> ItemVerdicts:
        """Verdict per constraint. `memo` (item bytes -> verdict) is shared by the calls for one
        response so a constraint repeated across prompts is checked once; `serialised` is
        `orjson.dumps(items)` when the caller already has it."""
        self.claims += 1
        key = None
        if share:
            key = digest(serialised or orjson.dumps(items), response)
            found = self.known.get(key)
            if found is not None and len(found) == len(items):
                if memo is not None:
                    memo.update(zip(map(orjson.dumps, items), found, strict=True))
                return found
        verdicts: list[bool | None] = []
        for item in items:
            item_key = orjson.dumps(item) if memo is not None else b""
            if memo is not None and item_key in memo:
                verdicts.append(memo[item_key])
                continue
            self.calls += 1
            verdict = _check_item(item, response)
            if memo is not None:
                memo[item_key] = verdict
            verdicts.append(verdict)
        result = tuple(verdicts)
        if key is not None:
            self.learned[key] = result
        return result

    def row(
        self,
        raw_constraints: Any,
        response: Any,
        memo: dict[bytes, bool | None] | None = None,
        *,
        serialised: bytes | None = None,
        share: bool = False,
    ) -> RowVerdict:
        """(all pass, failing kinds) for one response against one row's constraints."""
        items = constraint_items(raw_constraints)
        if items is None or not isinstance(response, str):
            self.claims += 1
            return UNVERIFIABLE
        verdicts = self.items(items, response, memo, serialised=serialised, share=share)
        if any(verdict is None for verdict in verdicts):
            return UNVERIFIABLE
        failing = tuple(
            str(item.get("kind") or item.get("dimension") or "?")
            for item, verdict in zip(items, verdicts, strict=True)
            if not verdict
        )
        return not failing, failing
