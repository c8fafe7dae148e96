"""HTTP SMS backend: JSON POST to a provider, with retries and back-off.

Layer rule: this package does I/O for SMS only; it knows nothing of accounts or
the database; callers pass text and a number.

Request: ``POST config.http_url`` with the JSON body
``{http_to_field: to, http_text_field: text, http_sender_field: http_sender,
http_reference_field: reference}`` and ``Authorization: Bearer <http_token>``
when a token is set.  Redirects are not followed (a 3xx is a refusal).

Outcomes:

* 2xx → ``SENT``; the provider id is read from ``http_id_field`` of the JSON
  response (absent or unreadable → still ``SENT``, id ``None``, a warning).
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
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from node.config import SmsConfig
from node.sms.gateway import SmsResult, SmsStatus, check_e164, mask_number

log = logging.getLogger("carnet.sms")

#: Longest wait honoured from a provider's ``Retry-After``, in seconds.
MAX_RETRY_AFTER = 30.0
#: Longest provider message id kept.
MAX_PROVIDER_ID_CHARS = 256

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


def _provider_id(response: httpx.Response, field: str) -> str | None:
    try:
        data = response.json()
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
        headers = {"Accept": "application/json"}
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
            try:
                response = await self._client.post(cfg.http_url, json=body)
            except httpx.TimeoutException:
                error = "provider timed out"
            except httpx.TransportError as exc:
                error = f"provider unreachable ({type(exc).__name__})"
            else:
                code = response.status_code
                if response.is_success:
                    provider_id = _provider_id(response, cfg.http_id_field)
                    if provider_id is None:
                        log.warning(
                            "SMS provider accepted ref %s (HTTP %d) without a readable %r id",
                            reference,
                            code,
                            cfg.http_id_field,
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
                    log.error(
                        "SMS to %s (ref %s) refused by provider: HTTP %d", masked, reference, code
                    )
                    return SmsResult(
                        SmsStatus.FAILED, None, f"provider refused the text (HTTP {code})", False
                    )
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
