"""What a queue message holds: its body opened, then its events parsed into documents.

A message that cannot be decoded is a :class:`PoisonMessage`: it is never stored
and SQS dead-letters it after its last receive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.core.logs import envelope
from services.core.logs.model import wire_to_document


class PoisonMessage(ValueError):
    pass


def receive_count(message: dict[str, Any]) -> int:
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


@dataclass
class Decoded:
    receipt: str
    message_id: str
    tenant_id: str
    events: list[dict[str, Any]]
    docs: list[dict[str, Any]] = field(default_factory=list)
    receives: int = 1


def open_message(message: dict[str, Any]) -> tuple[dict[str, Any], envelope.Opened]:
    """First step of decoding: the body opened, its events' size known, not parsed."""
    try:
        return message, envelope.open_body(message["Body"])
    except envelope.EnvelopeError as exc:
        raise PoisonMessage(str(exc)) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PoisonMessage(f"{type(exc).__name__}: {exc}") from exc


def parse_message(message: dict[str, Any], opened: envelope.Opened) -> Decoded:
    """Second step: the events parsed and turned into documents."""
    try:
        events = opened.events()
        if not all(isinstance(e.get("id"), str) and e["id"] for e in events):
            raise PoisonMessage("every event needs a non-empty string id")
        docs = [wire_to_document(opened.tenant_id, e) for e in events]
    except PoisonMessage:
        raise
    except envelope.EnvelopeError as exc:
        raise PoisonMessage(str(exc)) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PoisonMessage(f"{type(exc).__name__}: {exc}") from exc
    return Decoded(
        message["ReceiptHandle"],
        message["MessageId"],
        opened.tenant_id,
        events,
        docs,
        receive_count(message),
    )


def decode(message: dict[str, Any]) -> Decoded:
    return parse_message(*open_message(message))
