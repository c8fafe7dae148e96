"""Outbound federation connections go to public addresses only (no SSRF).

A peer's origin reaches this node from strangers: the key id of an incoming
signed request, a school address a guardian types to join a class, a peering
request.  Fetching it must not let anyone make the node call its own
network: a cloud metadata service, the database, an admin port on loopback.
So every connection resolves the name itself, refuses unless *every* address
is public (``ipaddress``'s ``is_global``), and connects to an address it
checked: a name that resolves to a public address when checked and a private
one when connecting (DNS rebinding) cannot slip through.

Exceptions, both chosen by the operator: origins routed by
``federation_connect`` (a district's own network), and a node on plain HTTP
loopback (the demo and the tests), which talks to its peers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing

import httpcore

REFUSED = "refused: a private address"


class RefusedAddress(httpcore.ConnectError):
    """The name resolves to an address that is not public; nothing was sent."""


def is_public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked public addresses."""

    def __init__(self, allowed_hosts: typing.Collection[str] = ()) -> None:
        self._inner = httpcore.AnyIOBackend()
        #: host names the operator routed on purpose (``federation_connect`` targets)
        self._allowed = frozenset(h.lower() for h in allowed_hosts)

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise httpcore.ConnectError(f"lookup failed: {type(error).__name__}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host.lower() in self._allowed:
            addresses = [host]
        else:
            addresses = await self.resolve(host, port)
            if not addresses or not all(is_public(a) for a in addresses):
                raise RefusedAddress(f"{REFUSED} ({host})")
        error: Exception | None = None
        for address in addresses:  # the checked addresses, in the resolver's order
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except httpcore.ConnectError as failure:
                error = failure
        raise error or httpcore.ConnectError("no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("federation never uses unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
