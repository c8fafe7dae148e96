"""What every service call needs besides its arguments: settings, the node secret, a clock."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nacl.signing

from node.config import NodeConfig


def utcnow() -> dt.datetime:
    """Naive UTC, the form every timestamp column stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _identity(locale: str, message: str) -> str:
    return message


@dataclass(frozen=True)
class ServiceContext:
    config: NodeConfig
    #: 32 random bytes from the data folder; keys HMACs of access and SMS codes.
    node_secret: bytes
    #: ``translate(locale, msgid)`` for texts the node sends itself (SMS).
    translate: Callable[[str, str], str] = _identity
    clock: Callable[[], dt.datetime] = field(default=utcnow)
    #: The node's current Ed25519 key (federation NP/1: node document, proofs, requests).
    signing_key: nacl.signing.SigningKey | None = field(default=None, repr=False)
    #: Tells other schools' nodes about a change, inside the caller's transaction
    #: (``publish(ctx, kind, payload)``, wired by ``create_app`` to the federation
    #: outbox; services never import ``federation``).
    publisher: Callable[[ServiceContext, str, dict[str, Any]], None] | None = field(
        default=None, repr=False
    )

    def now(self) -> dt.datetime:
        return self.clock()

    def today(self) -> dt.date:
        """The school's date now (days are wall-clock days in its time zone)."""
        zone = zoneinfo.ZoneInfo(self.config.timezone)
        return self.now().replace(tzinfo=dt.UTC).astimezone(zone).date()

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        """Record an event for other schools in the current write transaction."""
        if self.publisher is None:
            raise RuntimeError(f"cannot tell other schools about {kind}: federation is not wired")
        self.publisher(self, kind, payload)


@dataclass(frozen=True)
class Actor:
    """The authenticated person a service acts for."""

    account_id: int
    role: str
    display_name: str
    session_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_teacher(self) -> bool:
        return self.role == "teacher"

    @property
    def is_guardian(self) -> bool:
        return self.role == "guardian"
