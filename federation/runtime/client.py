"""Outbound NP/1 requests: fetching node documents and sending signed requests.

One shared ``httpx.AsyncClient`` per node (connect 5 s, total 15 s, at most 8
connections: NP/1 §9.1).  Every request names the peer's origin in its
signature (``@target-uri``); ``federation_connect`` may send the bytes
somewhere else (a private address, or a test proxy) without changing what is
signed.  Redirects are never followed and answers are read up to a bound.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx
import nacl.signing

from federation.httpsig import sign_request
from federation.nodedoc import MAX_DOCUMENT_BYTES
from federation.runtime.public_only import REFUSED, PublicOnlyBackend
from node.config import NodeConfig

DOCUMENT_PATH = "/.well-known/carnet-node"
#: Largest answer read from a peer (a pull page of 100 activities fits).
MAX_ANSWER_BYTES = 8 * 1024 * 1024
#: Largest refusal read from a peer when a download is refused (its JSON error).
MAX_REFUSAL_BYTES = 64 * 1024
LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Characters of a redirect's target or a path kept in an error message.
SHOWN_CHARS = 100


class FetchError(Exception):
    """A peer could not be reached or answered badly; the message says how."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """The system's trusted CAs, loaded once per process (each load takes tens of ms)."""
    return httpx.create_ssl_context()


def _transport(config: NodeConfig) -> httpx.AsyncHTTPTransport:
    """HTTP/1.1 with the system's CAs, at most 8 connections, to public addresses only."""
    transport = httpx.AsyncHTTPTransport(verify=_tls_context(), limits=LIMITS)
    parts = urlsplit(config.public_url)
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return transport  # the demo and the tests: peers on 127.0.0.1
    routed = [urlsplit(url).hostname or "" for url in config.federation_connect.values()]
    # httpx 0.28 takes no network backend; its pool is replaced by the same pool
    # with one (the transport's only other state is what is passed here).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_tls_context(),
        max_connections=LIMITS.max_connections,
        max_keepalive_connections=LIMITS.max_keepalive_connections,
        network_backend=PublicOnlyBackend(routed),
    )
    return transport


def _unreachable(origin: str, error: httpx.HTTPError) -> FetchError:
    if str(error).startswith(REFUSED):
        return FetchError(
            f"{origin} resolves to an address that is not public; a node only calls public "
            "addresses (an operator can route it with federation_connect)"
        )
    return FetchError(f"{origin} could not be reached ({type(error).__name__})")


def _shown(text: str) -> str:
    """``text`` fit for a log line or an admin's page: printable, at most ``SHOWN_CHARS``."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _refusal(
    origin: str, path: str, response: httpx.Response, limit: int | None
) -> FetchError | None:
    """Why an answer is refused on its headers alone (before any byte of its body), if it is.

    ``limit``: the most its body may hold, when a longer one is refused whole.
    """
    where = origin + _shown(path)
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("Location")
        target = f"redirect to {_shown(location)}" if location else "a redirect without Location"
        return FetchError(
            f"{where} answered HTTP {status} ({target}): a node does not follow a peer's redirects"
        )
    encoding = response.headers.get("Content-Encoding", "")
    if any(token.strip().lower() not in ("", "identity") for token in encoding.split(",")):
        return FetchError(
            f"{where} answered compressed (Content-Encoding: {_shown(encoding)}) although "
            "asked for identity: a node does not inflate a peer's answers"
        )
    length = response.headers.get("Content-Length", "")
    if limit is not None and length.isascii() and length.isdigit() and int(length) > limit:
        return FetchError(f"{origin} answered more than {limit} bytes")
    return None


async def _read(origin: str, response: httpx.Response, limit: int) -> bytes:
    """The body as sent, or FetchError past ``limit`` bytes.

    Called only after ``_refusal``: with no ``Content-Encoding`` but identity,
    httpx's decoder is its identity one and the bytes are those received.
    """
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchError(f"{origin} answered more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class FederationClient:
    def __init__(
        self,
        config: NodeConfig,
        signing_key: nacl.signing.SigningKey,
        key_id: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._connect = dict(config.federation_connect)
        self._signing_key = signing_key
        self.key_id = key_id
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(15.0, connect=5.0),
            follow_redirects=False,
            # httpx asks for gzip and deflate by default; a peer's answer is never inflated
            headers={"Accept-Encoding": "identity"},
            transport=transport or _transport(config),
        )

    def _url(self, origin: str, path: str) -> str:
        return self._connect.get(origin, origin).rstrip("/") + path

    async def _request(
        self,
        method: str,
        origin: str,
        path: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        limit: int,
    ) -> Answer:
        try:
            async with self._http.stream(
                method, self._url(origin, path), content=body, headers=headers
            ) as response:
                refused = _refusal(origin, path, response, limit)
                if refused is not None:
                    raise refused
                body = await _read(origin, response, limit)
                return Answer(response.status_code, response.headers, body)
        except httpx.TimeoutException:
            raise FetchError(f"{origin} did not answer in time") from None
        except httpx.HTTPError as error:
            raise _unreachable(origin, error) from None

    async def fetch_document(self, origin: str) -> bytes:
        """The peer's node document, unverified (the caller verifies it)."""
        answer = await self._request(
            "GET", origin, DOCUMENT_PATH, body=None,
            headers={"Accept": "application/json"}, limit=MAX_DOCUMENT_BYTES,
        )  # fmt: skip
        if answer.status != 200:
            raise FetchError(f"{origin}{DOCUMENT_PATH} answered HTTP {answer.status}")
        return answer.body

    async def signed(
        self,
        method: str,
        origin: str,
        path: str,
        body: bytes | None,
        *,
        created: int,
        as_key: tuple[nacl.signing.SigningKey, str] | None = None,
    ) -> Answer:
        """Send a request signed with the node's key (RFC 9421, NP/1 §3).

        ``as_key`` (key, key id) signs with another of the node's keys: a
        rotation statement goes out under the retiring key (NP/1 §2.5).
        """
        signing_key, keyid = as_key or (self._signing_key, self.key_id)
        headers = sign_request(
            method=method,
            target_uri=origin + path,
            body=body,
            signing_key=signing_key,
            keyid=keyid,
            created=created,
        )
        headers["Accept"] = "application/json"
        if body is not None:
            headers["Content-Type"] = "application/json"
        return await self._request(
            method, origin, path, body=body, headers=headers, limit=MAX_ANSWER_BYTES
        )

    async def signed_download(
        self, origin: str, path: str, sink: Callable[[bytes], Awaitable[None]], *, created: int
    ) -> Answer:
        """A signed GET whose 200 body goes to ``sink`` as it arrives (attachments).

        Large bodies never sit in memory; ``sink`` bounds what it accepts
        (it raises to stop the download).  Another status is answered with
        its body read whole, up to ``MAX_REFUSAL_BYTES``, for the caller's log.
        """
        headers = sign_request(
            method="GET", target_uri=origin + path, body=None,
            signing_key=self._signing_key, keyid=self.key_id, created=created,
        )  # fmt: skip
        headers["Accept"] = "application/octet-stream"
        try:
            async with self._http.stream(
                "GET", self._url(origin, path), headers=headers
            ) as response:
                # no length refused here: the sink bounds a 200's body, a refusal is cut short
                refused = _refusal(origin, path, response, None)
                if refused is not None:
                    raise refused
                if response.status_code != 200:
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_REFUSAL_BYTES:
                            break
                    return Answer(response.status_code, response.headers, body[:MAX_REFUSAL_BYTES])
                async for chunk in response.aiter_bytes():
                    await sink(chunk)
                return Answer(200, response.headers, b"")
        except httpx.TimeoutException:
            raise FetchError(f"{origin} did not answer in time") from None
        except httpx.HTTPError as error:
            raise _unreachable(origin, error) from None

    async def aclose(self) -> None:
        await self._http.aclose()
