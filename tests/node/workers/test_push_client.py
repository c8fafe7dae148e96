"""The push services' HTTP/1.1 client against a real server on 127.0.0.1.

Kept-alive connections and what ends them, the bounds on requests in
flight (per push service and in all), timeouts and refused addresses.  No
assertion here is about speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from node.push.client import MAX_ANSWER_BYTES, PushClient, RefusedAddress, TransportError
from node.push.webpush import classify
from tests.bomb_factories import bomb
from tests.push_factories import FakePushService, until


def loopback_client(per_origin: int = 4, limit: int = 16, timeout: float = 10) -> PushClient:
    return PushClient(per_origin=per_origin, limit=limit, timeout=timeout, private_ok=True)


@pytest.fixture
async def service() -> AsyncIterator[FakePushService]:
    async with FakePushService() as push_service:
        yield push_service


async def test_answers_come_back_with_status_and_retry_after(service: FakePushService) -> None:
    client = loopback_client()
    service.add_response(status_code=429, headers={"Retry-After": "120"})
    service.add_response(status_code=410)
    first = await client.post(f"{service.url}/push/a?x=1", {"TTL": "60"}, b"\x00body")
    second = await client.post(f"{service.url}/push/b", {}, b"")
    await client.aclose()
    assert (first.status, first.retry_after) == (429, "120")
    assert (second.status, second.retry_after) == (410, None)
    request = service.get_request(f"{service.url}/push/a?x=1")
    assert request is not None
    assert request.content == b"\x00body" and request.headers["TTL"] == "60"
    assert request.headers["Host"] == f"127.0.0.1:{service.port}"
    assert service.connections == 1 == client.connections_opened  # kept alive between the two


async def test_a_connection_the_server_dropped_while_idle_is_replaced_once(
    service: FakePushService,
) -> None:
    client = loopback_client()
    assert (await client.post(f"{service.url}/push/a", {}, b"1")).status == 201
    service.add_drop()  # the kept-alive connection is closed as the next request arrives
    assert (await client.post(f"{service.url}/push/a", {}, b"2")).status == 201
    assert client.connections_opened == 2
    assert [r.content for r in service.get_requests()] == [b"1", b"2", b"2"]
    service.add_drop()
    service.add_drop()  # dropped on the new connection too: reported, not retried again
    with pytest.raises(TransportError):
        await client.post(f"{service.url}/push/a", {}, b"3")
    await client.aclose()
    assert [r.content for r in service.get_requests()][3:] == [b"3", b"3"]


async def test_a_large_answer_is_not_read_and_its_connection_not_reused() -> None:
    big = b"x" * (MAX_ANSWER_BYTES * 4)
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = loopback_client()
    for _ in range(2):
        assert (await client.post(f"http://127.0.0.1:{port}/p", {}, b"")).status == 200
    await client.aclose()
    server.close()
    await server.wait_closed()
    assert connections == 2


async def test_connection_close_is_honoured(service: FakePushService) -> None:
    client = loopback_client()
    service.add_response(headers={"Connection": "close"})
    await client.post(f"{service.url}/push/a", {}, b"")
    await client.post(f"{service.url}/push/a", {}, b"")
    await client.aclose()
    assert client.connections_opened == 2


async def test_no_answer_within_the_timeout_is_an_error(service: FakePushService) -> None:
    client = loopback_client(timeout=0.3)
    service.add_stall()
    with pytest.raises(TransportError, match="timed out"):
        await client.post(f"{service.url}/push/a", {}, b"")
    assert (await client.post(f"{service.url}/push/a", {}, b"")).status == 201  # a new connection
    await client.aclose()


async def test_nothing_listening_is_an_error() -> None:
    async with FakePushService() as gone:
        url = f"{gone.url}/push/a"
    client = loopback_client()
    with pytest.raises(TransportError):
        await client.post(url, {}, b"")
    with pytest.raises(TransportError):
        await client.post("ftp://127.0.0.1/x", {}, b"")


async def test_private_addresses_are_refused_before_any_connection(
    service: FakePushService,
) -> None:
    client = PushClient(per_origin=1, limit=1, timeout=5)  # a node on a public address
    with pytest.raises(RefusedAddress):
        await client.post(f"{service.url}/push/a", {}, b"")
    assert service.connections == 0 and client.connections_opened == 0


async def test_requests_in_flight_are_bounded_per_push_service_and_a_slow_one_holds_only_its_own(
    service: FakePushService,
) -> None:
    gate = asyncio.Event()
    client = loopback_client(per_origin=3, limit=5)
    async with FakePushService() as fast:
        service.add_response(is_reusable=True, gate=gate)  # the slow push service
        slow_posts = [
            asyncio.create_task(client.post(f"{service.url}/push/{n}", {}, b"")) for n in range(8)
        ]
        await until(lambda: service.in_flight == 3)
        # the slow service holds 3 slots (its bound); the fast one gets the other 2 of 5
        answers = await asyncio.gather(
            *(client.post(f"{fast.url}/push/{n}", {}, b"") for n in range(6))
        )
        assert [a.status for a in answers] == [201] * 6
        assert fast.most_in_flight <= 2 and fast.connections <= 2
        assert service.in_flight == 3 and len(service.get_requests()) == 3
        gate.set()
        assert [a.status for a in await asyncio.gather(*slow_posts)] == [201] * 8
        assert service.most_in_flight == 3 and service.connections == 3
    await client.aclose()


class CannedServer:
    """Answers each request on a connection with the next canned answer, byte for byte."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> CannedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/push/x"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answers.pop(0))
                await writer.drain()
            await reader.read()  # until the client closes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_chunked_and_interim_answers_are_read_to_the_end_and_the_connection_reused() -> None:
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nRetry-After: 5\r\n\r\n"
        b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    plain = b"HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone"
    async with CannedServer(chunked, no_content, plain) as server:
        client = loopback_client()
        answers = [await client.post(server.url, {"TTL": "60"}, b"x") for _ in range(3)]
        await client.aclose()
    assert [(a.status, a.retry_after) for a in answers] == [(201, "5"), (204, None), (410, None)]
    assert server.connections == 1  # every answer read to its end, on one connection
    assert server.requests[0].startswith(b"POST /push/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nTTL: 60\r\nContent-Length: 1\r\n\r\nx" in server.requests[0]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n",  # 1.0: closes unless keep-alive
        b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 201 Created\r\n\r\n",  # no length: the body ends with the connection
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n" + b"x" * 8194,
    ],
)
async def test_answers_that_leave_the_connection_unusable_close_it(answer: bytes) -> None:
    async with CannedServer(answer, answer) as server:
        client = loopback_client()
        for _ in range(2):
            assert (await client.post(server.url, {}, b"")).status == 201
        await client.aclose()
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2x1 Created\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nshort",  # then the server closes
    ],
)
async def test_what_is_not_an_http_answer_is_an_error(answer: bytes) -> None:
    async with CannedServer(answer) as server:
        client = loopback_client(timeout=5)
        with pytest.raises(TransportError):
            await client.post(server.url, {}, b"")
        await client.aclose()


async def test_no_header_or_target_can_smuggle_a_line_into_the_request() -> None:
    async with CannedServer() as server:
        client = loopback_client()
        for url, headers in (
            (server.url, {"TTL": "60\r\nX-Evil: 1"}),
            (server.url, {"Bad Name": "1"}),
            (server.url, {"Urgency": "élevée"}),
            (server.url + "?a=1%0d%0a", {"X": "a\x00"}),
            (server.url.replace("/push/x", "/push/a b"), {}),
        ):
            with pytest.raises(TransportError, match="does not allow"):
                await client.post(url, headers, b"")
        await client.aclose()
    assert server.connections == 0


async def test_a_redirect_is_never_followed_nor_a_compressed_answer_inflated() -> None:
    """Research §6: a push service that redirects (to the cloud metadata service, or to itself
    in a loop) gets one request; a compressed bomb's body is not read at all (more than
    ``MAX_ANSWER_BYTES``): the client has no decoder, and drops the connection instead."""
    to_metadata = (
        b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
    )
    to_itself = b"HTTP/1.1 307 Again\r\nLocation: /push/x\r\nContent-Length: 0\r\n\r\n"
    payload = bomb("gzip")
    compressed = (
        b"HTTP/1.1 201 Created\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
        % len(payload)
        + payload
    )
    after = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    async with CannedServer(to_metadata, to_itself, compressed, after) as server:
        client = loopback_client()
        answers = [await client.post(server.url, {}, b"x") for _ in range(4)]
        await client.aclose()
    assert [a.status for a in answers] == [302, 307, 201, 201]
    assert [classify(a.status)[0] for a in answers] == ["rejected", "rejected", "ok", "ok"]
    assert len(server.requests) == 4  # one per post: nothing followed
    assert all(r.startswith(b"POST /push/x ") for r in server.requests)
    assert server.connections == 2  # the bomb's connection was dropped, its body unread
