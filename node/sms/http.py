"""HTTP SMS backend: JSON POST to a provider, with retries and back-off.

Layer rule: this package does I/O for SMS only; it knows nothing of accounts or
the database; callers pass text and a number.

Request: ``POST config.http_url`` with the JSON body
``{http_to_field: to, http_text_field: text, http_sender_field: http_sender,
http_reference_field: reference}`` and ``Authorization: Bearer <http_token>``
when a token is set.  Redirects are not followed (a 3xx is a refusal that
names the host it pointed to).  The answer is read as sent, never inflated:
the request asks for ``Accept-Encoding: identity``, and only a 2xx body of at
most ``MAX_ANSWER_BYTES``, not compressed, is read for the provider id.

Outcomes:

* 2xx → ``SENT``; the provider id is read from ``http_id_field`` of the JSON
  response (absent or unreadable, too long or compressed → still ``SENT``,
  id ``None``, a warning).
* 429 → wait ``Retry-After`` seconds (at most 30; back-off delay when absent),
  then retry.
* 5xx, timeouts, connection errors → retry after ``http_retry_base_delay``
  seconds, doubling each time, up to ``http_max_attempts`` attempts in all;
  then ``FAILED`` with ``retryable=True``.
* any other status → ``FAILED`` at once, ``retryable=False``, status in ``error``.

Neither the token nor the full number is ever logged or put in ``error``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from node.config import SmsConfig
from node.sms.gateway import SmsResult, SmsStatus, check_e164, mask_number

log = logging.getLogger("carnet.sms")

#: Longest wait honoured from a provider's ``Retry-After``, in seconds.
MAX_RETRY_AFTER = 30.0
#: Longest provider message id kept.
MAX_PROVIDER_ID_CHARS = 256
#: Largest answer read for the provider id (a JSON object of a few fields).
MAX_ANSWER_BYTES = 64 * 1024

Sleep = Callable[[float], Awaitable[Any]]


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds asked by ``Retry-After`` (delta-seconds or HTTP-date), capped; None if absent."""
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


async def _answer_body(response: httpx.Response) -> tuple[bytes | None, str]:
    """A 2xx answer's body as sent (never inflated), or None and why it was not read.

    Read only with no ``Content-Encoding`` but identity: httpx's decoder is then
    its identity one.
    """
    encoding = response.headers.get("content-encoding", "")
    if any(token.strip().lower() not in ("", "identity") for token in encoding.split(",")):
        return None, f"a compressed answer ({encoding[:40]!r}) is not read"
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            return None, f"an answer over {MAX_ANSWER_BYTES} bytes is not read"
    return body, ""


def _redirect(response: httpx.Response) -> str:
    """A 3xx as an error: the host it pointed to (never its path: it may hold the number)."""
    try:
        host = urlsplit(response.headers.get("location", "")).hostname
    except ValueError:
        host = None
    where = f" to {host[:100]}" if host else ""
    return f"provider redirected{where} (HTTP {response.status_code}); redirects are not followed"


def _provider_id(body: bytes, field: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get(field) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if 0 < len(text) <= MAX_PROVIDER_ID_CHARS else None


class HttpSmsGateway:
    """Posts texts to an HTTP provider; one ``httpx.AsyncClient`` per gateway."""

    name: str = "http"

    def __init__(
        self,
        config: SmsConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not config.http_url.startswith(("http://", "https://")):
            raise ValueError("sms.http_url must be the provider's http(s) URL")
        self._config = config
        self._sleep = sleep
        self._attempts = max(1, config.http_max_attempts)
        # identity: httpx asks for gzip and deflate by default, and a provider's answer is
        # never inflated (a few kilobytes of gzip can inflate to gigabytes)
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if config.http_token:
            headers["Authorization"] = f"Bearer {config.http_token}"
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=config.http_timeout,
            follow_redirects=False,
            headers=headers,
        )

    async def send(self, to: str, text: str, *, reference: str, urgent: bool = False) -> SmsResult:
        check_e164(to)
        cfg = self._config
        body = {
            cfg.http_to_field: to,
            cfg.http_text_field: text,
            cfg.http_sender_field: (cfg.http_alert_sender if urgent else "") or cfg.http_sender,
            cfg.http_reference_field: reference,
        }
        masked = mask_number(to)
        delay = max(0.0, cfg.http_retry_base_delay)
        error = "provider not reached"
        for attempt in range(1, self._attempts + 1):
            wait = delay
            answer, unread = None, ""
            try:
                async with self._client.stream("POST", cfg.http_url, json=body) as response:
                    if response.is_success:  # any other answer: its status is enough
                        answer, unread = await _answer_body(response)
            except httpx.TimeoutException:
                error = "provider timed out"
            except httpx.TransportError as exc:
                error = f"provider unreachable ({type(exc).__name__})"
            else:
                code = response.status_code
                if response.is_success:
                    provider_id = (
                        None if answer is None else _provider_id(answer, cfg.http_id_field)
                    )
                    if provider_id is None:
                        log.warning(
                            "SMS provider accepted ref %s (HTTP %d) without a readable %r id%s",
                            reference,
                            code,
                            cfg.http_id_field,
                            f": {unread}" if unread else "",
                        )
                    log.info(
                        "SMS to %s (ref %s) accepted by provider, id %s",
                        masked,
                        reference,
                        provider_id,
                    )
                    return SmsResult(SmsStatus.SENT, provider_id, None, False)
                if code == 429:
                    error = "provider rate limit (HTTP 429)"
                    asked = _retry_after(response)
                    if asked is not None:
                        wait = asked
                elif code >= 500:
                    error = f"provider error (HTTP {code})"
                else:
                    refused = (
                        _redirect(response)
                        if 300 <= code < 400
                        else f"provider refused the text (HTTP {code})"
                    )
                    log.error("SMS to %s (ref %s) failed: %s", masked, reference, refused)
                    return SmsResult(SmsStatus.FAILED, None, refused, False)
            if attempt < self._attempts:
                log.warning(
                    "SMS to %s (ref %s): %s; retry %d/%d in %.1f s",
                    masked,
                    reference,
                    error,
                    attempt,
                    self._attempts - 1,
                    wait,
                )
                await self._sleep(wait)
                delay *= 2
        log.error(
            "SMS to %s (ref %s) failed after %d attempts: %s",
            masked,
            reference,
            self._attempts,
            error,
        )
        return SmsResult(SmsStatus.FAILED, None, error, True)

    async def aclose(self) -> None:
        await self._client.aclose()
