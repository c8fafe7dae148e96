"""Outbound federation connections reach public addresses only, unless the operator routed them.

Each test listens on 127.0.0.1 and counts the connections it gets: a refused
origin must be refused before anything is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpcore
import nacl.signing
import pytest

from federation.runtime.client import FederationClient, FetchError
from federation.runtime.public_only import PublicOnlyBackend, RefusedAddress, is_public
from node.config import load_config

DOCUMENT = b'{"hello": "from a peer"}'


class Listener:
    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(DOCUMENT)}\r\nConnection: close\r\n\r\n".encode()
            + DOCUMENT
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    peer = Listener()
    server = await asyncio.start_server(peer.answer, "127.0.0.1", 0)
    peer.port = server.sockets[0].getsockname()[1]
    async with server:
        yield peer


def _client(tmp_path: Path, public_url: str, **config: Any) -> FederationClient:
    values = {"data_dir": str(tmp_path), "public_url": public_url, **config}
    return FederationClient(load_config(values), nacl.signing.SigningKey.generate(), "k1")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.7", False),
        ("192.168.1.20", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address to refuse, not one to bind)
        ("not an address", False),
    ],
)
def test_only_global_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


class Resolving(PublicOnlyBackend):
    """The backend with a resolver answering what the test says (as a rebinding DNS would)."""

    def __init__(self, answers: list[str], allowed: tuple[str, ...] = ()) -> None:
        super().__init__(allowed)
        self.answers = answers

    async def resolve(self, host: str, port: int) -> list[str]:
        return self.answers


@pytest.mark.parametrize(
    "answers", [["127.0.0.1"], ["10.1.2.3"], ["93.184.216.34", "127.0.0.1"], []]
)
async def test_a_name_with_any_private_address_is_refused_before_connecting(
    listener: Listener, answers: list[str]
) -> None:
    with pytest.raises(RefusedAddress):
        await Resolving(answers).connect_tcp("ecole-b.example", listener.port)
    assert listener.connections == 0


async def test_a_loopback_address_given_directly_is_refused(listener: Listener) -> None:
    with pytest.raises(RefusedAddress):
        await PublicOnlyBackend().connect_tcp("127.0.0.1", listener.port)
    assert listener.connections == 0


async def test_a_host_the_operator_routed_is_reached(listener: Listener) -> None:
    stream = await PublicOnlyBackend(["127.0.0.1"]).connect_tcp("127.0.0.1", listener.port)
    await stream.aclose()
    await asyncio.sleep(0.05)
    assert listener.connections == 1


async def test_a_routed_name_does_not_open_its_address_to_other_names(listener: Listener) -> None:
    backend = Resolving(["127.0.0.1"], allowed=("localhost",))
    with pytest.raises(RefusedAddress):
        await backend.connect_tcp("ecole-b.example", listener.port)
    with pytest.raises(httpcore.ConnectError):
        await PublicOnlyBackend().connect_unix_socket("/run/carnet.sock")


async def test_a_public_node_refuses_to_fetch_a_document_from_loopback(
    tmp_path: Path, listener: Listener
) -> None:
    client = _client(tmp_path, "https://ecole-a.example")
    try:
        with pytest.raises(FetchError) as refused:
            await client.fetch_document(f"http://127.0.0.1:{listener.port}")
    finally:
        await client.aclose()
    assert "not public" in str(refused.value)
    assert listener.connections == 0


async def test_a_public_node_reaches_a_peer_routed_by_federation_connect(
    tmp_path: Path, listener: Listener
) -> None:
    route = {"https://ecole-b.example": f"http://127.0.0.1:{listener.port}"}
    client = _client(tmp_path, "https://ecole-a.example", federation_connect=route)
    try:
        assert await client.fetch_document("https://ecole-b.example") == DOCUMENT
    finally:
        await client.aclose()
    assert listener.connections == 1


async def test_a_loopback_demo_node_talks_to_peers_on_loopback(
    tmp_path: Path, listener: Listener
) -> None:
    client = _client(tmp_path, "http://127.0.0.1:8000")
    try:
        assert await client.fetch_document(f"http://127.0.0.1:{listener.port}") == DOCUMENT
    finally:
        await client.aclose()
