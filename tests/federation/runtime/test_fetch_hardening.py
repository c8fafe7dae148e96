"""What a peer answers cannot make the node inflate a bomb or follow a redirect (research §6).

A peer's answer compressed with gzip or deflate (10 MB of zeros in about
10 KB) is refused on its headers: the test's stream counts the bytes the
client took from it, and it must be none, so nothing could have been
inflated.  A 3xx answer is refused after one request, with a message that
says where it pointed.  The last tests go through the delivery worker: such
a peer is a peer failure with its reason stored, and what was queued for it
stays queued.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nacl.signing
import pytest
from pytest_httpx import HTTPXMock
from quart import Quart
from quart.typing import TestClientProtocol as Client

from federation.keys import key_id
from federation.runtime import outbox
from federation.runtime.client import FederationClient, FetchError
from federation.runtime.worker import DeliveryWorker
from node.config import load_config
from node.services.context import ServiceContext
from node.storage import activities as store
from node.storage import peers as peer_store
from node.storage.db import Storage, write_transaction
from tests.bomb_factories import ZEROS, CountedStream, bomb
from tests.conftest import PUBLIC_URL
from tests.federation.runtime.peer_factories import DOC, B, FakePeer, peered

INBOX_PATH = "/np/inbox/txn/01J8Z6R4000000000000000001"
MEDIA_PATH = "/np/media/blob-1"
PULL_PATH = "/np/streams/classes/cm2?after=0&limit=100"


@pytest.fixture
def no_delivery() -> None:
    """The client tests need no node (this replaces the directory's fixture, which starts one)."""


def test_the_bombs_inflate_to_10_mb() -> None:
    """What the tests below serve is a real bomb (a client that inflated it would hold 10 MB)."""
    for encoding, wbits in (("gzip", 31), ("deflate", 15)):
        inflater = zlib.decompressobj(wbits)
        assert len(inflater.decompress(bomb(encoding))) == ZEROS and inflater.eof
        assert len(bomb(encoding)) < 12_000


@pytest.fixture
async def fed_client(tmp_path: Path) -> AsyncIterator[FederationClient]:
    config = load_config({"data_dir": str(tmp_path), "public_url": "https://ecole-a.example"})
    origin = config.public_url
    federation_client = FederationClient(
        config, nacl.signing.SigningKey.generate(), key_id(origin, "k1")
    )
    yield federation_client
    await federation_client.aclose()


Call = Callable[[FederationClient], Awaitable[object]]


async def _drop(chunk: bytes) -> None:
    raise AssertionError("an attachment chunk reached the sink")


#: every kind of outgoing request: (name, path asked, how it is made)
CALLS: list[tuple[str, str, Call]] = [
    ("node document", "/.well-known/carnet-node", lambda c: c.fetch_document(B)),
    (
        "signed transaction",
        INBOX_PATH,
        lambda c: c.signed("PUT", B, INBOX_PATH, b"{}", created=1_800_000_000),
    ),
    ("signed pull", PULL_PATH, lambda c: c.signed("GET", B, PULL_PATH, None, created=1)),
    (
        "attachment download",
        MEDIA_PATH,
        lambda c: c.signed_download(B, MEDIA_PATH, _drop, created=1_800_000_000),
    ),
]
CALL_IDS = [name for name, _, _ in CALLS]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize(("name", "path", "call"), CALLS, ids=CALL_IDS)
async def test_a_compressed_answer_is_refused_before_any_byte_is_read(
    fed_client: FederationClient, httpx_mock: HTTPXMock, encoding: str, name: str, path: str,
    call: Call,
) -> None:  # fmt: skip
    body = CountedStream(bomb(encoding))
    httpx_mock.add_response(
        url=B + path, headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        stream=body,
    )  # fmt: skip
    with pytest.raises(FetchError) as refused:
        await call(fed_client)
    assert str(refused.value) == (
        f"{B}{path} answered compressed (Content-Encoding: {encoding}) although asked for "
        "identity: a node does not inflate a peer's answers"
    )
    assert body.taken == 0  # not one compressed byte read: nothing was inflated
    [request] = httpx_mock.get_requests()
    assert request.headers["Accept-Encoding"] == "identity"


async def test_an_identity_answer_is_read_as_sent_never_decoded(
    fed_client: FederationClient, httpx_mock: HTTPXMock
) -> None:
    """Bytes that happen to be gzip, without a Content-Encoding, stay those bytes."""
    small = gzip.compress(b'{"not": "inflated"}')
    httpx_mock.add_response(url=DOC, stream=CountedStream(small))
    httpx_mock.add_response(
        url=DOC, headers={"Content-Encoding": "identity"}, stream=CountedStream(small)
    )
    assert await fed_client.fetch_document(B) == small
    assert await fed_client.fetch_document(B) == small


async def test_an_answer_longer_than_the_bound_is_refused_on_its_length(
    fed_client: FederationClient, httpx_mock: HTTPXMock
) -> None:
    body = CountedStream(bytes(70_000))
    httpx_mock.add_response(url=DOC, headers={"Content-Length": "70000"}, stream=body)
    with pytest.raises(FetchError, match=f"^{B} answered more than 65536 bytes$"):
        await fed_client.fetch_document(B)
    assert body.taken == 0


LONG = "https://ecole-c.example/" + "a" * 5000
REDIRECTS = [
    (301, DOC, f"redirect to {DOC}"),  # to itself
    (
        302,
        "http://169.254.169.254/latest/meta-data/",
        "redirect to http://169.254.169.254/latest/meta-data/",
    ),  # noqa: E501
    (307, "/.well-known/carnet-node?again=1", "redirect to /.well-known/carnet-node?again=1"),
    (308, LONG, "redirect to " + LONG[:99] + "…"),
    (303, None, "a redirect without Location"),
]


@pytest.mark.parametrize(("status", "location", "shown"), REDIRECTS)
async def test_a_redirect_from_a_node_document_is_refused_not_followed(
    fed_client: FederationClient, httpx_mock: HTTPXMock, status: int, location: str | None,
    shown: str,
) -> None:  # fmt: skip
    # reusable and matching any URL: a client that followed would loop, or reach the metadata
    httpx_mock.add_response(
        status_code=status, headers={"Location": location} if location else {},
        is_reusable=True, is_optional=True,
    )  # fmt: skip
    with pytest.raises(FetchError) as refused:
        await fed_client.fetch_document(B)
    assert str(refused.value) == (
        f"{DOC} answered HTTP {status} ({shown}): a node does not follow a peer's redirects"
    )
    assert [str(r.url) for r in httpx_mock.get_requests()] == [DOC]  # exactly one request


@pytest.mark.parametrize(("name", "path", "call"), CALLS[1:], ids=CALL_IDS[1:])
async def test_a_redirect_from_a_signed_request_is_refused_not_followed(
    fed_client: FederationClient, httpx_mock: HTTPXMock, name: str, path: str, call: Call
) -> None:
    httpx_mock.add_response(
        status_code=307, headers={"Location": B + path}, is_reusable=True, is_optional=True
    )
    with pytest.raises(FetchError, match=r"answered HTTP 307 \(redirect to https://ecole-b"):
        await call(fed_client)
    assert len(httpx_mock.get_requests()) == 1


# --- Through the delivery worker: a peer failure, nothing lost ----------------------------------


@pytest.fixture
async def worker(app: Quart) -> DeliveryWorker:
    await app.extensions["carnet_delivery"].stop()  # the server's own would race the test
    for task in app.extensions["carnet_anti_entropy"]:
        task.cancel()
    return DeliveryWorker(app.extensions["carnet_federation"])


@pytest.fixture
async def peer(
    worker: DeliveryWorker, client: Client, storage: Storage, ctx: ServiceContext,
    httpx_mock: HTTPXMock,
) -> FakePeer:  # fmt: skip
    school = FakePeer()
    await peered(client, storage, ctx, httpx_mock, school)
    return school


def publish_one(storage: Storage, ctx: ServiceContext) -> None:
    def write() -> None:
        with write_transaction():
            outbox.publish(
                ctx, stream=PUBLIC_URL + "/classes/1", kind="class", type="Create",
                actor=PUBLIC_URL + "/users/1", audience=PUBLIC_URL + "/classes/1#members",
                object={"id": outbox.new_id(ctx, "posts"), "type": "Note", "version": 1,
                        "attributedTo": PUBLIC_URL + "/users/1", "content": "ciphertext"},
                recipients={B: [B + "/users/7"]},
            )  # fmt: skip

    storage.call(write)


def peer_state(storage: Storage) -> tuple[peer_store.Peer, int, list[str], int]:
    """The peer row, its backlog, its pinned keys and the transactions queued for it."""

    def read() -> tuple[peer_store.Peer, int, list[str], int]:
        row = peer_store.Peer.get_by_id(1)
        keys = [k.key_id for k in peer_store.select_peer_keys(1)]
        return row, store.backlog_of(1), keys, store.FedTxnOut.select().count()

    return storage.call(read)


async def test_a_peer_whose_document_is_a_bomb_is_a_peer_failure_and_nothing_is_lost(
    storage: Storage, ctx: ServiceContext, peer: FakePeer, worker: DeliveryWorker,
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    publish_one(storage, ctx)
    # five failures in a row: the breaker is open, the worker probes the document first
    storage.call(
        lambda: (
            peer_store.Peer.update(fail_count=5, next_attempt_at=dt.datetime(2000, 1, 1))
            .where(peer_store.Peer.id == 1)
            .execute()
        )
    )
    before, backlog, keys, _ = peer_state(storage)
    assert backlog == 1 and keys
    body = CountedStream(bomb("gzip"))
    httpx_mock.add_response(url=DOC, headers={"Content-Encoding": "gzip"}, stream=body)
    caplog.set_level(logging.WARNING, "carnet.federation")
    assert await worker.run_once() == 0
    reason = (
        f"probe failed: {DOC} answered compressed (Content-Encoding: gzip) although asked for "
        "identity: a node does not inflate a peer's answers"
    )
    after, backlog_after, keys_after, _ = peer_state(storage)
    assert after.last_error == reason and after.fail_count == 6
    assert after.next_attempt_at > ctx.now()  # backed off
    assert reason in caplog.text
    assert body.taken == 0
    # nothing stored before is lost: the queued activity, the pinned keys, the document
    assert backlog_after == backlog and keys_after == keys
    assert (after.document, after.state) == (before.document, "active")
    assert not [r for r in httpx_mock.get_requests() if "/np/inbox/" in str(r.url)]


async def test_a_peer_that_redirects_a_transaction_is_retried_later_not_quarantined(
    storage: Storage, ctx: ServiceContext, peer: FakePeer, worker: DeliveryWorker,
    httpx_mock: HTTPXMock,
) -> None:  # fmt: skip
    publish_one(storage, ctx)
    httpx_mock.add_response(
        method="PUT", status_code=301, headers={"Location": "http://169.254.169.254/"}
    )
    assert await worker.run_once() == 0
    state, backlog, _, queued = peer_state(storage)
    assert state.fail_count == 1 and state.next_attempt_at > ctx.now()
    assert state.last_error.startswith(f"{B}/np/inbox/txn/")
    assert state.last_error.endswith(
        "answered HTTP 301 (redirect to http://169.254.169.254/): "
        "a node does not follow a peer's redirects"
    )
    assert queued == 1  # the batch waits for its retry, byte for byte
    assert storage.call(lambda: store.FedDeadLetter.select().count()) == 0
    assert [r.method for r in httpx_mock.get_requests()] == ["GET", "PUT"]  # the peering's GET
