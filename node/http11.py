"""HTTP/1.x only on the plain bind: Hypercorn's cleartext HTTP/2 (h2c) switched off.

Hypercorn 0.18 turns a plain-HTTP connection into HTTP/2 by itself when the
client sends the HTTP/2 preface (``PRI * HTTP/2.0``, "prior knowledge") or
asks for ``Upgrade: h2c``, and has no setting to refuse either. Carnet sits
behind a TLS reverse proxy that speaks HTTP/2 to browsers and HTTP/1.x to
Carnet (operator guide §4), so cleartext HTTP/2 here serves no one and only
adds attack surface:

* HTTP/2 "rapid reset" (CVE-2023-44487): a client opens a stream and resets it
  at once, thousands of times per connection; each one still starts a request
  in the app, and resets do not count against ``MAX_CONCURRENT_STREAMS``;
* "h2c smuggling": a proxy that passes ``Upgrade`` headers on (for
  WebSockets) and then tunnels the connection lets a client send HTTP/2
  requests that the proxy never sees.

:func:`install` makes ``carnet serve`` answer every connection with
HTTP/1.0 and 1.1 only: an ``Upgrade: h2c`` header is ignored (a server may
ignore Upgrade, RFC 9110 §7.8) and the request is answered in HTTP/1.1; the
HTTP/2 preface, or any other HTTP version, gets ``505 HTTP Version Not
Supported`` and the connection is closed. This relies on Hypercorn's
``H11Protocol`` internals, hence the exact pin in ``pyproject.toml``;
``tests/multinode/test_http_abuse_nodes.py`` checks both cases on a real
``carnet serve``.
"""

from __future__ import annotations

import h11
import hypercorn.protocol
from hypercorn.events import Closed
from hypercorn.protocol.h11 import H11Protocol

#: The request versions served; nginx speaks HTTP/1.0 to its upstreams by default.
HTTP_VERSIONS = frozenset({b"1.0", b"1.1"})


class Http11OnlyProtocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol without its switches to HTTP/2."""

    async def _check_protocol(self, event: h11.Request) -> None:
        """Never switch: ``Upgrade: h2c`` is ignored, the preface is refused in ``_create_stream``."""

    async def _create_stream(self, request: h11.Request) -> None:
        if request.http_version not in HTTP_VERSIONS:
            await self._send_error_response(505)
            await self.send(Closed())
            return
        await super()._create_stream(request)


def install() -> None:
    """Make Hypercorn use :class:`Http11OnlyProtocol` for every new plain-HTTP connection.

    Hypercorn's ``ProtocolWrapper`` looks ``H11Protocol`` up in its module at each
    connection; ``carnet serve`` calls this once before serving (its process serves
    nothing else).
    """
    hypercorn.protocol.H11Protocol = Http11OnlyProtocol  # type: ignore[attr-defined]
