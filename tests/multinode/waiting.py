"""Polling instead of sleeping: wait until a condition holds, or fail saying why.

Rule: multi-node tests never ``time.sleep`` to let something happen. They
poll a predicate with :func:`wait_until`, which returns as soon as it is
true and, on timeout, fails with the description, the last value seen (or
the last exception) and the end of every node log it was given, so that a
red test says what the cluster was doing.

The timeout is a ceiling for a broken run, not a measurement: a passing test
is as fast as the condition allows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

import httpx

T = TypeVar("T")

#: Exceptions that mean "not yet" while polling: a node still starting or
#: restarting refuses connections, and predicates may use ``assert``.
RETRY_ON: tuple[type[BaseException], ...] = (httpx.TransportError, AssertionError)


class HasLog(Protocol):
    """Anything with a name and a log (a :class:`tests.multinode.nodes.Node`)."""

    @property
    def name(self) -> str: ...

    def log_tail(self, lines: int = 40) -> str: ...


class WaitTimeout(AssertionError):
    """A polled condition did not hold in time (an AssertionError, so pytest shows it as a failure)."""


def _describe(predicate: object, what: str | None) -> str:
    if what:
        return what
    name = getattr(predicate, "__qualname__", None) or repr(predicate)
    return f"{name} to be true"


def _failure(
    description: str,
    timeout: float,
    polls: int,
    last: object,
    error: BaseException | None,
    logs: Iterable[HasLog],
    log_lines: int,
) -> WaitTimeout:
    seen = f"last error: {error!r}" if error is not None else f"last value: {last!r}"
    if len(seen) > 2000:
        seen = seen[:2000] + "…"
    parts = [f"waited {timeout:g} s ({polls} polls) for {description}; {seen}"]
    for node in logs:
        parts.append(
            f"---- last {log_lines} lines of {node.name}'s log ----\n{node.log_tail(log_lines)}"
        )
    return WaitTimeout("\n".join(parts))


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str | None = None,
    logs: Iterable[HasLog] = (),
    log_lines: int = 30,
    retry_on: tuple[type[BaseException], ...] = RETRY_ON,
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Args:
        predicate: No arguments; a truthy return ends the wait. Raising one of
            ``retry_on`` counts as "not yet"; any other exception propagates.
        timeout: Seconds before giving up.
        interval: Seconds between polls.
        what: What is awaited, for the failure message (default: the predicate's name).
        logs: Nodes whose log tails the failure message shows.
        log_lines: How many lines of each log to show.
        retry_on: Exceptions treated as "not yet".

    Raises:
        WaitTimeout: The predicate was never truthy within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    polls = 0
    last: object = None
    error: BaseException | None = None
    while True:
        polls += 1
        try:
            value = predicate()
        except retry_on as exc:
            error = exc
        else:
            if value:
                return value
            last, error = value, None
        if time.monotonic() >= deadline:
            raise _failure(_describe(predicate, what), timeout, polls, last, error, logs, log_lines)
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Awaitable[T | None]],
    *,
    # Not asyncio.timeout(): on expiry this fails with the last value and the logs.
    timeout: float = 10.0,  # noqa: ASYNC109
    interval: float = 0.05,
    what: str | None = None,
    logs: Iterable[HasLog] = (),
    log_lines: int = 30,
    retry_on: tuple[type[BaseException], ...] = RETRY_ON,
) -> T:
    """:func:`wait_until` for a coroutine predicate (an ``httpx.AsyncClient`` call, say)."""
    deadline = time.monotonic() + timeout
    polls = 0
    last: object = None
    error: BaseException | None = None
    while True:
        polls += 1
        try:
            value = await predicate()
        except retry_on as exc:
            error = exc
        else:
            if value:
                return value
            last, error = value, None
        if time.monotonic() >= deadline:
            raise _failure(_describe(predicate, what), timeout, polls, last, error, logs, log_lines)
        await asyncio.sleep(interval)
