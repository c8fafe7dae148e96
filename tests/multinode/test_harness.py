"""The multi-node harness itself: real nodes, the fault proxy, polling, cleanup.

Nodes are real ``carnet serve`` processes; the proxy is tested against a
small hypercorn upstream (``echo.py``) and, for byte-exactness, a raw socket
upstream, so every mode is observed from both sides of the link.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import nacl.signing
import pytest

from federation.errors import BadSignature
from federation.httpsig import VerifiedSignature, sign_request, verify_request
from node.config import load_config
from node.refclient import credentials_json, login_secret, new_account
from tests.multinode.cluster import Cluster, start_nodes
from tests.multinode.echo import EchoServer
from tests.multinode.faultproxy import FaultProxy, Mode
from tests.multinode.nodes import FEDERATION_CONNECT, NodeError, child_environment, suite_database
from tests.multinode.ports import port_of, reserve_port
from tests.multinode.tomlfile import render_toml
from tests.multinode.waiting import WaitTimeout, wait_until, wait_until_async

PASSPHRASE = "harness passphrase for carnet"


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (a data folder, say)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # ended while we looked
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def login(client: httpx.Client, login_name: str, passphrase: str) -> httpx.Response:
    """Log in through the JSON API as the web client does (CSRF token, prelogin, login)."""
    token = client.get("/api/v1/session").json()["csrf_token"]
    headers = {"X-CSRF-Token": token}
    pre = client.post("/api/v1/auth/prelogin", json={"login": login_name}, headers=headers).json()
    secret = login_secret(passphrase, pre["salt"], pre["iterations"])
    return client.post(
        "/api/v1/auth/login", json={"login": login_name, "login_secret": secret}, headers=headers
    )


# --------------------------------------------------------------------------- nodes


@pytest.mark.transport  # processes, whatever the database: the SQLite phase covers it
def test_three_nodes_start_in_parallel_and_answer_health(
    three_nodes: Callable[..., Cluster],
) -> None:
    cluster = three_nodes()
    a, b, c = cluster
    assert [n.name for n in cluster] == ["a", "b", "c"] and cluster.b is b and cluster["c"] is c
    assert len({n.port for n in cluster}) == 3
    assert len({n.data_dir for n in cluster}) == 3
    for node in cluster:
        assert node.origin == f"http://127.0.0.1:{node.port}"
        assert node.running and node.pid is not None and processes_mentioning(str(node.data_dir))
        with node.client() as client:
            response = client.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        written = tomllib.loads(node.config_path.read_text(encoding="utf-8"))
        assert written["public_url"] == node.origin
        assert written["bind"] == f"127.0.0.1:{node.port}"
        assert written["school_name"] == f"École {node.name.upper()}"
        assert node.admin_setup_url and node.admin_setup_url.startswith(node.origin + "/setup/")
        assert "serving on http://127.0.0.1" in node.log_text()
        assert bool(node.database_url) == (suite_database() == "postgresql")
        where = node.database_url.split("@")[-1] or f"sqlite:///{node.sqlite_path}"
        assert f"Database ready: {where}" in node.log_text()
        if node.sqlite_path is not None:
            assert node.sqlite_path.is_file()

    async def health_of_all() -> list[int]:
        codes = []
        for node in cluster:
            async with node.async_client() as client:
                codes.append((await client.get("/healthz")).status_code)
        return codes

    assert asyncio.run(health_of_all()) == [200, 200, 200]


@pytest.mark.transport
def test_a_killed_node_restarts_on_its_data_and_port(
    make_cluster: Callable[..., Cluster],
) -> None:
    (node,) = make_cluster(("a",))
    assert node.admin_email and node.admin_setup_url
    token = node.admin_setup_url.rsplit("/setup/", 1)[1]
    account = new_account(node.admin_email, PASSPHRASE)
    with node.client() as client:  # written while the node serves, then the node crashes
        csrf = client.get("/api/v1/session").json()["csrf_token"]
        response = client.post(
            f"/api/v1/setup/{token}",
            json=credentials_json(account.credentials),
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status_code == 201, response.text
    first_pid, port = node.pid, node.port

    assert node.kill() == -9
    assert not node.running and node.pid is None
    assert not node.healthy()
    assert not processes_mentioning(str(node.data_dir))

    node.restart()
    assert node.port == port and node.pid not in (None, first_pid) and node.healthy()
    with node.client() as client:
        assert login(client, node.admin_email, PASSPHRASE).status_code == 200
        assert client.get("/api/v1/me").json()["role"] == "admin"

    assert node.stop() == 0  # SIGTERM: hypercorn's graceful shutdown, exit code 0
    node.start()
    assert node.healthy() and node.starts == 3
    log = node.log_text()
    assert "SIGKILL" in log and "start #3" in log and log.count("serving on") == 3


@pytest.mark.transport
@pytest.mark.parametrize("failure", [AssertionError, KeyboardInterrupt])
def test_leaving_a_cluster_stops_every_process(
    tmp_path: Path, failure: type[BaseException]
) -> None:
    with pytest.raises(failure):
        with start_nodes(tmp_path, ("x", "y")) as cluster:
            pids = [n.pid for n in cluster]
            assert all(pids) and len(processes_mentioning(str(tmp_path))) == 2
            raise failure("the test failed, or Ctrl-C")
    assert not processes_mentioning(str(tmp_path))
    assert all(not n.running and n.returncode == 0 for n in cluster)


@pytest.mark.transport  # processes, whatever the database: the SQLite phase covers it
def test_a_node_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, ("a",), config={"no_such_setting_for_the_harness": 1})
    with cluster, pytest.raises(NodeError, match="unknown setting no_such_setting_for_the_harness"):
        cluster.start()
    assert not processes_mentioning(str(tmp_path))


@pytest.mark.transport
def test_links_are_routed_through_federation_connect(
    three_nodes: Callable[..., Cluster], link: Callable[..., FaultProxy]
) -> None:
    cluster = three_nodes(
        start=False,
        config={"log_level": "WARNING"},
        node_config={"b": {"sms": {"http_sender": "B"}}},
    )
    a, b, c = cluster
    to_b, to_c = link(a, b), link(a, c)
    assert link(a, b) is to_b and (to_b.upstream_port, to_c.upstream_port) == (b.port, c.port)
    cluster.start()

    # What the node itself reads from the carnet.toml the harness wrote.
    read_a = load_config({"data_dir": str(a.data_dir)}, environ={})
    assert read_a.federation_connect == {b.origin: to_b.url, c.origin: to_c.url}
    assert read_a.public_url == a.origin and read_a.log_level == "WARNING"
    read_b = load_config({"data_dir": str(b.data_dir)}, environ={})
    assert read_b.federation_connect == {} and read_b.sms.http_sender == "B"
    assert FEDERATION_CONNECT not in tomllib.loads(b.config_path.read_text(encoding="utf-8"))

    with httpx.Client(trust_env=False) as client:  # the link really leads to b
        assert client.get(to_b.url + "/healthz").json() == {"status": "ok"}
    assert [(r.path, r.action, r.status) for r in to_b.requests] == [("/healthz", "forwarded", 200)]


def test_render_toml_round_trips_through_tomllib() -> None:
    values: dict[str, Any] = {
        "school_name": 'École "Jules" \\ Ferry\n',
        "kdf_iterations": 600_000,
        "ratio": 0.5,
        "flag": True,
        "list": [1, "two", False],
        "sms": {"backend": "http", "http_url": "http://127.0.0.1:9/x"},
        FEDERATION_CONNECT: {"http://127.0.0.1:5001": "http://127.0.0.1:6001"},
        "outer": {"inner": {"deep key": "v"}, "empty": {}},
    }
    assert tomllib.loads(render_toml(values)) == values
    with pytest.raises(TypeError):
        render_toml({"when": object()})


# --------------------------------------------------------------------------- polling


class FakeLog:
    name = "fake-node"

    def log_tail(self, lines: int = 40) -> str:
        return "line one\nthe interesting last line"


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls: Iterator[object] = iter([None, 0, [], "ready", "later"])
    assert wait_until(lambda: next(calls), timeout=5, interval=0.001) == "ready"


def test_wait_until_fails_with_the_last_value_and_the_logs() -> None:
    with pytest.raises(WaitTimeout) as failure:
        wait_until(lambda: [], timeout=0.05, interval=0.01, what="the answer", logs=[FakeLog()])
    message = str(failure.value)
    assert "for the answer; last value: []" in message
    assert "fake-node" in message and "the interesting last line" in message


def test_wait_until_retries_transport_errors_and_propagates_others() -> None:
    def refused() -> bool:
        raise httpx.ConnectError("refused")

    with pytest.raises(WaitTimeout, match="last error: ConnectError"):
        wait_until(refused, timeout=0.05, interval=0.01)

    def broken() -> bool:
        raise ValueError("a bug, not a wait")

    with pytest.raises(ValueError):
        wait_until(broken, timeout=5)


async def test_wait_until_async_awaits_the_predicate() -> None:
    state = {"n": 0}

    async def third_time() -> int | None:
        state["n"] += 1
        return state["n"] if state["n"] >= 3 else None

    assert await wait_until_async(third_time, timeout=5, interval=0.001) == 3


# --------------------------------------------------------------------------- fault proxy


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def proxy(echo: EchoServer, fault_proxy: Callable[..., FaultProxy]) -> FaultProxy:
    return fault_proxy(echo.port, name="test->echo")


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=5) as c:
        yield c


def test_pass_forwards_and_records_every_request(
    proxy: FaultProxy, echo: EchoServer, client: httpx.Client
) -> None:
    got = client.get("/echo/x?a=1", headers={"X-Test": "yes"}).json()
    assert got["path"] == "/echo/x" and got["query"] == "a=1"
    got = client.post("/echo/post", content=b"x" * 70_000).json()
    assert got["body_size"] == 70_000
    got = client.post("/echo/chunked", content=iter([b"ab", b"", b"cd" * 5000])).json()
    assert got["body_size"] == 10_002
    assert client.head("/echo/head").status_code == 200
    streamed = client.get("/stream?parts=3")
    assert streamed.text == "part 0\npart 1\npart 2\n"
    assert streamed.headers["transfer-encoding"] == "chunked"

    seen = proxy.requests
    assert [(r.method, r.path, r.action, r.status, r.answered) for r in seen] == [
        ("GET", "/echo/x", "forwarded", 200, True),
        ("POST", "/echo/post", "forwarded", 200, True),
        ("POST", "/echo/chunked", "forwarded", 200, True),
        ("HEAD", "/echo/head", "forwarded", 200, True),
        ("GET", "/stream", "forwarded", 200, True),
    ]
    assert seen[0].target == "/echo/x?a=1" and seen[0].header("x-test") == "yes"
    assert seen[0].header("host") == f"127.0.0.1:{proxy.port}"
    assert [r.body_size for r in seen] == [0, 70_000, 10_002, 0, 0]
    assert seen[2].chunked and seen[2].body == b"abcd" + b"cd" * 4999
    # Keep-alive on both sides: one connection to the proxy, one to the upstream.
    assert proxy.connections == 1 and {r.connection for r in seen} == {1}
    assert len({r.client for r in echo.received}) == 1 and len(echo.received) == 5
    proxy.clear()
    assert proxy.requests == [] and proxy.connections == 0


class RawUpstream:
    """Records the exact bytes of each request (Content-Length or chunked) and answers ``ok``."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                head += b"\r\n\r\n"
                if b"chunked" in head.lower():
                    while b"\r\n0\r\n" not in rest or not rest.endswith(b"\r\n\r\n"):
                        rest += conn.recv(65536)
                    body, buffer = rest, b""
                else:
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    body, buffer = rest[:length], rest[length:]
                self.requests.append(head + body)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self.listener.close()


def test_pass_preserves_the_request_bytes_exactly(fault_proxy: Callable[..., FaultProxy]) -> None:
    upstream = RawUpstream()
    proxy = fault_proxy(upstream.port)
    first = (
        b"POST /np/inbox?q=%2F HTTP/1.1\r\nHost: school-b.test\r\nX-Odd-CASE:   spaced value \r\n"
        b"Content-Digest: sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\r\n"
        b'Content-Length: 18\r\n\r\n{"hello": "world"}'
    )
    second = (
        b"PUT /np/keys HTTP/1.1\r\nhost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: t\r\n\r\n"
    )
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            for request in (first, second):
                sock.sendall(request)
                answer = b""
                while not answer.endswith(b"ok"):
                    answer += sock.recv(65536)
                assert answer == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        assert upstream.requests == [first, second]
        seen = proxy.requests
        assert seen[0].header("x-odd-case") == "spaced value" and seen[0].body_size == 18
        assert seen[1].chunked and seen[1].body == b"hello world"
    finally:
        upstream.close()


def test_signed_requests_still_verify_behind_the_proxy(
    proxy: FaultProxy, echo: EchoServer, client: httpx.Client
) -> None:
    key = nacl.signing.SigningKey(bytes(range(32)))
    keyid = "http://127.0.0.1:1/.well-known/carnet-node#k1"
    body = b'{"np": 1, "type": "Transaction"}'
    created = int(time.time())
    # Signed for the receiver's own public URL, sent to the proxy's address.
    headers = sign_request(
        method="POST", target_uri=echo.url + "/np/inbox", body=body,
        signing_key=key, keyid=keyid, created=created,
    )  # fmt: skip
    client.post("/np/inbox", content=body, headers=headers)
    (got,) = echo.received

    def check(target_uri: str) -> VerifiedSignature:
        return verify_request(
            method=got.method, target_uri=target_uri, headers=got.headers, body=got.body,
            now=created, lookup_key=lambda _: key.verify_key,
        )  # fmt: skip

    assert check(echo.url + "/np/inbox").keyid == keyid
    with pytest.raises(BadSignature):  # a receiver rebuilding the URL from Host would refuse it
        check(proxy.url + "/np/inbox")


def test_delay_forwards_late_even_when_the_client_gave_up(
    proxy: FaultProxy, echo: EchoServer, client: httpx.Client
) -> None:
    proxy.delay(0.3)
    assert client.get("/slow").status_code == 200
    (seen,) = proxy.requests
    assert seen.mode == "delay" and seen.forwarded_at is not None
    assert seen.forwarded_at - seen.seen_at >= 0.3

    with pytest.raises(httpx.ReadTimeout):
        client.get("/given-up", timeout=0.05)
    wait_until(lambda: echo.hits("/given-up") == 1, what="the late request to reach the upstream")


def test_drop_closes_without_an_answer(
    proxy: FaultProxy, echo: EchoServer, client: httpx.Client
) -> None:
    proxy.drop()
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/np/inbox", content=b"{}")
    (seen,) = proxy.requests
    assert (seen.action, seen.answered, seen.body_size) == ("dropped", False, 2)
    assert echo.received == []
    proxy.passthrough()
    assert client.get("/after").status_code == 200


def test_blackhole_never_answers_until_the_client_gives_up_or_the_mode_changes(
    proxy: FaultProxy, echo: EchoServer, client: httpx.Client
) -> None:
    proxy.blackhole()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/void", timeout=0.2)
    wait_until(lambda: proxy.requests[0].note == "the client gave up")

    with ThreadPoolExecutor(1) as pool:
        waiting: Future[httpx.Response] = pool.submit(client.get, "/void2", timeout=30)
        proxy.wait_for_requests(2)
        assert not waiting.done()
        proxy.passthrough()
        with pytest.raises(httpx.RemoteProtocolError):
            waiting.result(timeout=10)
    assert proxy.requests[1].action == "blackholed"
    assert proxy.requests[1].note == "closed unanswered: the mode changed"
    assert echo.received == []
    assert client.get("/after").status_code == 200


def test_status_answers_instead_of_forwarding(
    proxy: FaultProxy, echo: EchoServer, client: httpx.Client
) -> None:
    proxy.status(503, retry_after=2, count=2)
    for _ in range(2):
        response = client.post("/np/inbox", content=b"{}")
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        assert response.json()["error"]["status"] == 503
    assert proxy.mode == Mode()  # back to pass after the count
    assert client.post("/np/inbox", content=b"{}").status_code == 200
    assert echo.hits("/np/inbox") == 1

    proxy.status(429)
    for _ in range(3):
        response = client.get("/np/streams")
        assert response.status_code == 429 and "retry-after" not in response.headers
    assert proxy.mode == Mode("status", code=429) and echo.hits("/np/streams") == 0
    assert [r.action for r in proxy.requests] == ["status"] * 2 + ["forwarded"] + ["status"] * 3
    assert proxy.connections == 1  # answers keep the connection alive


def test_cut_refuses_connections_and_pass_restores_the_same_port(
    proxy: FaultProxy, echo: EchoServer, client: httpx.Client
) -> None:
    assert client.get("/before").status_code == 200
    port = proxy.port
    proxy.cut()
    with pytest.raises(httpx.TransportError):  # the kept-alive connection was reset
        client.get("/during")
    with httpx.Client(trust_env=False) as fresh, pytest.raises(httpx.ConnectError):
        fresh.get(proxy.url + "/during")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    proxy.passthrough()
    assert proxy.port == port
    assert client.get("/after").status_code == 200
    assert echo.hits("/during") == 0 and echo.hits("/after") == 1


def test_drop_response_lets_the_upstream_process_then_loses_the_answer(
    proxy: FaultProxy, echo: EchoServer, client: httpx.Client
) -> None:
    proxy.drop_response()
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/np/inbox", content=b'{"type": "Accept"}')
    assert echo.hits("/np/inbox") == 1
    (seen,) = proxy.requests
    assert (seen.action, seen.status, seen.answered) == ("response_dropped", 200, False)
    proxy.passthrough()
    assert client.post("/np/inbox", content=b"{}").status_code == 200
    assert echo.hits("/np/inbox") == 2


def test_an_unreachable_upstream_resets_the_client(fault_proxy: Callable[..., FaultProxy]) -> None:
    with reserve_port() as reserved:  # bound, never listening: connections are refused
        proxy = fault_proxy(port_of(reserved))
        with httpx.Client(trust_env=False) as client, pytest.raises(httpx.TransportError):
            client.get(proxy.url + "/np/inbox")
    (seen,) = proxy.requests
    assert seen.action == "upstream_unreachable" and not seen.answered


def test_a_closed_proxy_leaves_no_thread_and_no_listener(echo: EchoServer) -> None:
    proxy = FaultProxy(echo.port, name="short-lived").start()
    with httpx.Client(trust_env=False) as client:
        assert client.get(proxy.url + "/x").status_code == 200
    proxy.close()
    proxy.close()  # twice is fine
    assert not [t for t in threading.enumerate() if t.name == "fault-proxy-short-lived"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5).close()


def test_the_node_harness_never_inherits_node_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARNET_PUBLIC_URL", "http://elsewhere.test")
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("https_proxy", "http://proxy.elsewhere.test:3128")
    env = child_environment()
    assert not {"CARNET_PUBLIC_URL", "DATABASE_URL", "https_proxy"} & set(env)
    assert env["CARNET_TEST_HARNESS_PARENT"] == str(os.getpid())
