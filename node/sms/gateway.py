"""The SMS gateway interface, its result types, the factory and the status callback parser.

Layer rule: this package does I/O for SMS only.  It knows nothing of accounts or
the database; callers pass text and a number (E.164, like ``+33612345678``) plus
their own message reference, which is echoed to the provider so that delivery
status callbacks can name the message.
"""

from __future__ import annotations

import enum
import hmac
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

    from node.config import SmsConfig

#: Header the provider sends back on delivery status callbacks.
SECRET_HEADER = "X-Carnet-Sms-Secret"  # noqa: S105 (a header name, not a secret)
#: Largest status callback body accepted, in bytes.
MAX_CALLBACK_BYTES = 4096
#: Longest message reference accepted in a status callback.
MAX_REFERENCE_CHARS = 256

# "+" then 8 to 15 ASCII digits; E.164 country codes never start with 0.
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


class SmsStatus(enum.StrEnum):
    """Where a text is in its delivery lifecycle (Twilio-like: queued → sent → delivered…).

    A ``str`` subclass: ``SmsStatus.SENT == "sent"`` and ``str(SmsStatus.SENT) == "sent"``.
    """

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


@dataclass(frozen=True)
class SmsResult:
    """What happened to one ``send``.

    Attributes:
        status: ``SENT`` when the provider (or the console) accepted the text,
            ``FAILED`` otherwise.
        provider_id: the provider's message id (console: a random id), when known.
        error: short human-readable reason when ``FAILED``; never contains the number.
        retryable: True when a later retry could succeed (network errors, 429,
            5xx after all attempts).
    """

    status: SmsStatus
    provider_id: str | None = None
    error: str | None = None
    retryable: bool = False


class SmsGateway(Protocol):
    """Sends one text to one number.  Implementations never raise on provider failures."""

    name: str

    async def send(self, to: str, text: str, *, reference: str, urgent: bool = False) -> SmsResult:
        """Send ``text`` to ``to`` (E.164); ``reference`` is the caller's message id;
        ``urgent``: an emergency alert (sent from the alert sender, where there is one).

        Raises:
            ValueError: ``to`` is not an E.164 number.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the gateway is unusable afterwards."""
        ...


class SmsCallbackError(ValueError):
    """A delivery status callback was refused; the message says why."""


class SmsCallbackAuthError(SmsCallbackError):
    """The callback's shared secret is missing or wrong, or callbacks are disabled (→ 403)."""


def check_e164(to: str) -> str:
    """Return ``to`` if it is an E.164 number (``+`` then 8–15 digits).

    Raises:
        ValueError: otherwise (the message does not repeat the number).
    """
    if not isinstance(to, str) or not _E164.fullmatch(to):
        raise ValueError("phone number must be E.164: '+' then 8 to 15 digits")
    return to


def mask_number(to: str) -> str:
    """Mask a number for logs: only the last two digits are shown (``•• •• •• •• 78``).

    The shape is the same whatever the length, so the mask leaks nothing else.
    """
    digits = [c for c in to if c.isdigit()]
    tail = "".join(digits[-2:]) if len(digits) >= 2 else "••"
    return "•• •• •• •• " + tail


def make_gateway(
    config: SmsConfig,
    data_dir: Path,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SmsGateway:
    """Build the gateway named by ``config.backend``.

    Args:
        config: the ``[sms]`` section of the node configuration.
        data_dir: the node's data folder (the console backend writes its outbox there).
        transport: httpx transport for the ``http`` backend (tests); default network.

    Raises:
        ValueError: unknown backend, or the ``http`` backend without a provider URL.
    """
    if config.backend == "console":
        from node.sms.console import ConsoleSmsGateway

        return ConsoleSmsGateway(data_dir)
    if config.backend == "http":
        from node.sms.http import HttpSmsGateway

        return HttpSmsGateway(config, transport=transport)
    raise ValueError(f"unknown SMS backend {config.backend!r}")


_CALLBACK_STATUSES = {
    s.value: s
    for s in (SmsStatus.SENT, SmsStatus.DELIVERED, SmsStatus.UNDELIVERED, SmsStatus.FAILED)
}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, item in headers.items():
        if key.lower() == wanted:
            return item
    return None


def _callback_json(
    config: SmsConfig, headers: Mapping[str, str], body: bytes, what: str
) -> dict[str, Any]:
    """The JSON object of a provider's callback, after checking its shared secret."""
    expected = config.status_secret
    if not expected:
        raise SmsCallbackAuthError("SMS callbacks are disabled (sms.status_secret is empty)")
    given = _header(headers, SECRET_HEADER)
    if given is None:
        raise SmsCallbackAuthError(f"missing {SECRET_HEADER} header")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise SmsCallbackAuthError(f"wrong {SECRET_HEADER} header")
    if len(body) > MAX_CALLBACK_BYTES:
        raise SmsCallbackError(f"{what} body larger than {MAX_CALLBACK_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SmsCallbackError(f"{what} body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise SmsCallbackError(f"{what} body must be a JSON object")
    return data


def parse_status_callback(
    config: SmsConfig, headers: Mapping[str, str], body: bytes
) -> tuple[str, SmsStatus]:
    """Check and decode a provider's delivery status callback.

    The provider must send ``X-Carnet-Sms-Secret: <config.status_secret>`` and a
    JSON object ``{"reference": str, "status": "sent"|"delivered"|"undelivered"|"failed"}``
    of at most 4 KiB; other fields are ignored.

    Returns:
        ``(reference, status)``: the caller's message reference given to ``send``.

    Raises:
        SmsCallbackAuthError: callbacks are disabled (empty secret) or the secret is wrong.
        SmsCallbackError: the body is too large, not JSON, or lacks a field or a known status.
    """
    data = _callback_json(config, headers, body, "status callback")
    reference = data.get("reference")
    if not isinstance(reference, str) or not reference:
        raise SmsCallbackError("status callback lacks a 'reference' string")
    if len(reference) > MAX_REFERENCE_CHARS:
        raise SmsCallbackError(f"status callback reference longer than {MAX_REFERENCE_CHARS}")
    raw_status = data.get("status")
    if not isinstance(raw_status, str):
        raise SmsCallbackError("status callback lacks a 'status' string")
    status = _CALLBACK_STATUSES.get(raw_status)
    if status is None:
        allowed = ", ".join(_CALLBACK_STATUSES)
        raise SmsCallbackError(f"unknown status {raw_status[:32]!r}; expected one of: {allowed}")
    return reference, status


#: What a reply may say to stop ordinary texts, and to have them again (case and accents ignored).
STOP_WORDS = frozenset({"STOP", "ARRET", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})


def parse_reply(config: SmsConfig, headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """Check and decode a text a person sent back (``POST /api/v1/sms/replies``).

    Same secret header as delivery reports; a JSON object ``{"from": E.164
    number, "text": str}`` of at most 4 KiB.

    Returns:
        ``(number, keyword)``: ``stop``, ``start`` or ``other``.

    Raises:
        SmsCallbackAuthError: callbacks are disabled or the secret is wrong.
        SmsCallbackError: a malformed body or number.
    """
    data = _callback_json(config, headers, body, "reply")
    number, text = data.get("from"), data.get("text")
    if not isinstance(number, str) or not isinstance(text, str):
        raise SmsCallbackError("a reply needs 'from' and 'text' strings")
    try:
        check_e164(number)
    except ValueError as error:
        raise SmsCallbackError(str(error)) from None
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().strip().upper()
    word = plain.split()[0] if plain.split() else ""
    keyword = "stop" if word in STOP_WORDS else "start" if word in START_WORDS else "other"
    return number, keyword
