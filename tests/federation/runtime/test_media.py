"""Attachments between schools (NP/1 §7.1): the class's node serves them, the home node fetches them.

Class side: ``FakePeer`` (École B) hosts a guardian who joined a class here
and asks for its media with signed GETs.  Home side: this node mirrors a
class of École B (rows made directly, as the class stream would), and
pytest-httpx plays École B's ``/np/media/…``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from quart import Quart
from quart.typing import TestClientProtocol as Client

from federation.httpsig import sign_request, verify_request
from federation.keys import key_id
from node.e2e.encoding import b64url_encode
from node.e2e.keys import generate_account_keys
from node.services import blobs, groups, posts
from node.services.context import Actor, ServiceContext
from node.storage import feed as feed_store
from node.storage import peers as peer_store
from node.storage.accounts import Account, select_account
from node.storage.db import Storage
from node.storage.directory import Child, Guardianship, SchoolClass
from node.storage.groups import E2eGroup, GroupMember
from tests.conftest import PUBLIC_URL
from tests.factories import api_login, invite, make_guardian, make_school, sms_code
from tests.federation.runtime.peer_factories import B, FakePeer, peered
from tests.feed_factories import ClassFeed, make_class_feed

REMOTE_PHONE = "+33639981234"
PHONE = "+33639980001"
OTHER_PHONE = "+33639980002"


def sha(data: bytes) -> str:
    return b64url_encode(hashlib.sha256(data).digest())


# -- class side: this node serves its classes' media to peers ---------------------


def signed_get(peer: FakePeer, path: str) -> dict[str, str]:
    return sign_request(
        method="GET", target_uri=PUBLIC_URL + path, body=None, signing_key=peer.keys["k1"],
        keyid=key_id(peer.origin, "k1"), created=int(time.time()),
    )  # fmt: skip


async def signed_post(client: Client, peer: FakePeer, path: str, body: dict[str, Any]) -> Any:
    data = json.dumps(body).encode()
    headers = sign_request(
        method="POST", target_uri=PUBLIC_URL + path, body=data, signing_key=peer.keys["k1"],
        keyid=key_id(peer.origin, "k1"), created=int(time.time()),
    )  # fmt: skip
    return await client.post(path, data=data, headers=headers)


async def join_from_peer(
    client: Client, storage: Storage, data_dir: Path, peer: FakePeer, code: str
) -> None:
    """École B's guardian 42 asks to join with the slip's code (NP/1 §9.2 steps 1–2)."""
    keys = generate_account_keys()
    started = await signed_post(client, peer, "/np/join", {
        "follow": B + "/np/joins/1", "actor": B + "/users/42", "code": code, "locale": "fr",
        "sign_pk": b64url_encode(keys.sign_pk), "enc_pk": b64url_encode(keys.enc_pk),
    })  # fmt: skip
    assert started.status_code == 201, await started.get_data(as_text=True)
    join = (await started.get_json())["join_id"]
    texted = sms_code(storage, data_dir, REMOTE_PHONE)
    linked = await signed_post(client, peer, f"/np/join/{join}/code", {"sms_code": texted})
    assert linked.status_code == 200


def upload(cf: ClassFeed, data: bytes) -> str:
    """The teacher's browser uploads ciphertext in parts of at most 1 MiB."""
    storage, ctx, teacher = cf.storage, cf.ctx, cf.teacher.actor
    info = storage.call(blobs.start_upload, ctx, teacher, cf.class_id, len(data))
    for start in range(0, len(data), info.part_bytes):
        storage.call(
            blobs.append_part, ctx, teacher, info.id, start, data[start : start + info.part_bytes]
        )
    storage.call(blobs.complete_upload, ctx, teacher, info.id, sha(data))
    return info.id


@pytest.fixture
async def class_side(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path, httpx_mock: HTTPXMock
) -> tuple[ClassFeed, FakePeer]:
    """A class of two families; École B's guardian is linked to the first family's child."""
    cf = make_class_feed(storage, ctx, families=2)
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer, school=False)
    slip = invite(storage, ctx, cf.teacher.actor, cf.guardians[0].child_id, REMOTE_PHONE, "Sam")
    await join_from_peer(client, storage, data_dir, peer, slip.code)
    return cf, peer


async def fetch_media(client: Client, peer: FakePeer, blob_id: str) -> Any:
    path = f"/np/media/{blob_id}"
    return await client.get(path, headers=signed_get(peer, path))


async def refused(response: Any) -> tuple[int, str]:
    return response.status_code, (await response.get_json())["error"]


async def test_a_peer_hosting_an_approved_member_gets_the_exact_ciphertext(
    client: Client, class_side: tuple[ClassFeed, FakePeer]
) -> None:
    cf, peer = class_side
    data = secrets.token_bytes(2 * 1024 * 1024 + 1234)  # several 1 MiB reads
    blob_id = upload(cf, data)
    cf.post({"text": "photos", "attachments": []}, blobs=[blob_id])
    # linked but not approved yet: no active member on École B
    assert await refused(await fetch_media(client, peer, blob_id)) == (403, "not_member")
    cf.approve_all()
    response = await fetch_media(client, peer, blob_id)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == str(len(data))
    assert await response.get_data() == data


async def test_a_peer_without_a_member_of_the_class_is_refused(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    peer = FakePeer()
    await peered(client, storage, ctx, httpx_mock, peer, school=False)
    blob_id = upload(cf, secrets.token_bytes(100))
    cf.post({"text": "x", "attachments": []}, blobs=[blob_id])
    assert await refused(await fetch_media(client, peer, blob_id)) == (403, "not_member")


async def test_a_node_that_is_not_a_peer_is_refused_before_any_key_fetch(
    client: Client, httpx_mock: HTTPXMock, class_side: tuple[ClassFeed, FakePeer]
) -> None:
    cf, _ = class_side
    cf.approve_all()
    blob_id = upload(cf, secrets.token_bytes(100))
    cf.post({"text": "x", "attachments": []}, blobs=[blob_id])
    before = len(httpx_mock.get_requests())
    stranger = FakePeer(origin="https://ecole-z.example")
    assert await refused(await fetch_media(client, stranger, blob_id)) == (403, "not_peer")
    assert len(httpx_mock.get_requests()) == before  # nothing fetched from ecole-z


async def test_unknown_unattached_and_deleted_files_are_not_found(
    client: Client, class_side: tuple[ClassFeed, FakePeer]
) -> None:
    cf, peer = class_side
    cf.approve_all()
    assert await refused(await fetch_media(client, peer, "A" * 22)) == (404, "not_found")
    unattached = upload(cf, secrets.token_bytes(100))
    assert await refused(await fetch_media(client, peer, unattached)) == (404, "not_found")
    blob_id = upload(cf, secrets.token_bytes(100))
    post = cf.post({"text": "x", "attachments": []}, blobs=[blob_id])
    assert (await fetch_media(client, peer, blob_id)).status_code == 200
    cf.storage.call(posts.delete_message, cf.ctx, cf.teacher.actor, cf.class_id, post)
    assert await refused(await fetch_media(client, peer, blob_id)) == (404, "not_found")


async def test_a_post_to_some_families_goes_only_to_peers_hosting_one_of_them(
    client: Client, class_side: tuple[ClassFeed, FakePeer]
) -> None:
    cf, peer = class_side
    cf.approve_all()
    theirs, others = upload(cf, b"a" * 100), upload(cf, b"b" * 100)
    cf.post({"text": "a", "attachments": []}, blobs=[theirs], children=[cf.guardians[0].child_id])
    cf.post({"text": "b", "attachments": []}, blobs=[others], children=[cf.guardians[1].child_id])
    assert await (await fetch_media(client, peer, theirs)).get_data() == b"a" * 100
    assert await refused(await fetch_media(client, peer, others)) == (403, "not_member")


# -- home side: this node fetches a mirrored class's media on the first read -------

MEDIA = B + "/np/media/"


def make_shadow_teacher(ctx: ServiceContext) -> Account:
    account: Account = Account.create(
        role="teacher", display_name="Mme B", login="np:1@ecole-b.example", status="remote",
        created_at=ctx.now(),
    )  # fmt: skip
    return account


def make_mirror_class(ctx: ServiceContext, peer_id: int, teacher: Account) -> SchoolClass:
    school_class: SchoolClass = SchoolClass.create(
        name="CM2 B", school_year="2026-2027", teacher=teacher, created_at=ctx.now(),
        peer_id=peer_id, remote_url=B + "/classes/7",
    )  # fmt: skip
    return school_class


def make_mirror_child(ctx: ServiceContext, school_class: SchoolClass, guardian_id: int) -> Child:
    child: Child = Child.create(
        school_class=school_class, first_name="Noé", last_name="Durand", created_at=ctx.now(),
        remote_url=B + "/children/3",
    )  # fmt: skip
    Guardianship.create(child=child, account=guardian_id, created_at=ctx.now())
    return child


def make_mirror_group(ctx: ServiceContext, school_class: SchoolClass, guardian_id: int) -> E2eGroup:
    group: E2eGroup = E2eGroup.create(
        public_id=b64url_encode(secrets.token_bytes(16)), school_class=school_class,
        admins="[]", head_seq=2, head_hash="A" * 43, current_epoch=1, created_at=ctx.now(),
    )  # fmt: skip
    account = select_account(guardian_id)
    assert account is not None
    GroupMember.create(
        group=group, member=groups.member_id(ctx, guardian_id), account=guardian_id,
        role="guardian", sign_pk=account.sign_pk, enc_pk=account.enc_pk, active=True, added_seq=2,
    )  # fmt: skip
    return group


def make_mirror_post(ctx: ServiceContext, group: E2eGroup, author: Account) -> feed_store.Message:
    message: feed_store.Message = feed_store.Message.create(
        group=group, public_id=b64url_encode(secrets.token_bytes(16)), kind="post", author=author,
        author_member="1@ecole-b.example", epoch=1, version=1, header="{}", ct="ciphertext",
        sig="A" * 86, created_at=ctx.now(), updated_at=ctx.now(),
    )  # fmt: skip
    return message


def make_remote_blob(
    ctx: ServiceContext, message: feed_store.Message, owner: Account, data: bytes, digest: str
) -> str:
    """The mirror of a blob of École B: same public id, its size and SHA-256, no bytes yet."""
    public_id = b64url_encode(secrets.token_bytes(16))
    feed_store.Blob.create(
        public_id=public_id, owner=owner, group=message.group_id, message=message,
        size=len(data), received=0, sha256=digest, status="remote", created_at=ctx.now(),
    )  # fmt: skip
    return public_id


def make_mirror(ctx: ServiceContext, guardian_id: int, data: bytes, digest: str) -> str:
    """A class of École B mirrored for one guardian of this node, with one post and its file."""
    peer = peer_store.select_peer_by_origin(B)
    assert peer is not None
    teacher = make_shadow_teacher(ctx)
    school_class = make_mirror_class(ctx, peer.id, teacher)
    make_mirror_child(ctx, school_class, guardian_id)
    group = make_mirror_group(ctx, school_class, guardian_id)
    message = make_mirror_post(ctx, group, teacher)
    return make_remote_blob(ctx, message, teacher, data, digest)


@pytest.fixture
async def home_side(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> tuple[Actor, Any]:
    """A guardian of this node, logged in; École B is a confirmed peer."""
    school = make_school(storage, ctx)
    await peered(client, storage, ctx, httpx_mock, FakePeer(), school=False)
    slip = invite(storage, ctx, school.teacher, school.child_id, PHONE)
    actor = make_guardian(storage, ctx, slip.code, PHONE)
    await api_login(client, PHONE)
    return actor, school


def blob_row(storage: Storage, blob_id: str) -> feed_store.Blob:
    row = storage.call(feed_store.select_blob, blob_id)
    assert row is not None
    return row


def stored_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "blobs").rglob("*") if p.is_file())


async def test_the_first_read_fetches_checks_and_keeps_the_file_then_ranges_work(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path,
    httpx_mock: HTTPXMock, home_side: tuple[Actor, Any],
) -> None:  # fmt: skip
    actor, _ = home_side
    data = secrets.token_bytes(3 * 1024 * 1024 + 17)
    blob_id = storage.call(make_mirror, ctx, actor.account_id, data, sha(data))
    httpx_mock.add_response(url=MEDIA + blob_id, content=data)

    whole = await client.get(f"/api/v1/blobs/{blob_id}")
    assert whole.status_code == 200, await whole.get_data(as_text=True)
    assert await whole.get_data() == data
    # asked of École B with this node's signature, for that file
    request = httpx_mock.get_request(url=MEDIA + blob_id)
    assert request is not None and request.method == "GET"
    verify_key = app.config["CARNET_KEYS"].signing_key.verify_key
    verify_request(
        method="GET", target_uri=MEDIA + blob_id, headers=request.headers.multi_items(),
        body=request.content, now=int(time.time()), lookup_key=lambda keyid: verify_key,
    )  # fmt: skip
    row = blob_row(storage, blob_id)
    assert (row.status, row.received, row.completed_at is not None) == ("complete", len(data), True)
    assert stored_files(data_dir) == [blob_id]  # no temporary file left

    # served from here from now on (pytest-httpx answers each response once)
    ranged = await client.get(
        f"/api/v1/blobs/{blob_id}", headers={"Range": "bytes=1048570-1048585"}
    )
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes 1048570-1048585/{len(data)}"
    assert await ranged.get_data() == data[1048570:1048586]
    assert len(httpx_mock.get_requests(url=MEDIA + blob_id)) == 1


async def test_concurrent_first_reads_fetch_once(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path,
    httpx_mock: HTTPXMock, home_side: tuple[Actor, Any],
) -> None:  # fmt: skip
    actor, _ = home_side
    data = secrets.token_bytes(1024 * 1024 + 5)
    blob_id = storage.call(make_mirror, ctx, actor.account_id, data, sha(data))

    async def slowly(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)  # the other reads arrive while this one is fetching
        return httpx.Response(200, content=data)

    httpx_mock.add_callback(slowly, url=MEDIA + blob_id)
    answers = await asyncio.gather(*(client.get(f"/api/v1/blobs/{blob_id}") for _ in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [await a.get_data() for a in answers] == [data] * 3
    assert len(httpx_mock.get_requests(url=MEDIA + blob_id)) == 1
    assert stored_files(data_dir) == [blob_id]
    assert app.extensions["carnet_federation"].fetching == {}


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="other bytes"),
        pytest.param(lambda data: data[:-1], id="fewer bytes"),
        pytest.param(lambda data: data + b"x", id="more bytes"),
    ],
)
async def test_bytes_that_do_not_match_are_not_kept(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path,
    httpx_mock: HTTPXMock, home_side: tuple[Actor, Any], sent: Any,
) -> None:  # fmt: skip
    actor, _ = home_side
    data = secrets.token_bytes(5000)
    blob_id = storage.call(make_mirror, ctx, actor.account_id, data, sha(data))
    httpx_mock.add_response(url=MEDIA + blob_id, content=sent(data))
    response = await client.get(f"/api/v1/blobs/{blob_id}")
    error = (await response.get_json())["error"]
    assert (response.status_code, error["code"]) == (502, "unreachable")
    assert "do not match" in error["message"]
    assert blob_row(storage, blob_id).status == "remote"
    assert stored_files(data_dir) == []


async def test_an_unreachable_school_is_a_502_and_nothing_is_kept(
    client: Client, storage: Storage, ctx: ServiceContext, data_dir: Path,
    httpx_mock: HTTPXMock, home_side: tuple[Actor, Any],
) -> None:  # fmt: skip
    actor, _ = home_side
    data = secrets.token_bytes(5000)
    blob_id = storage.call(make_mirror, ctx, actor.account_id, data, sha(data))
    httpx_mock.add_exception(httpx.ConnectError("connection refused"), url=MEDIA + blob_id)
    response = await client.get(f"/api/v1/blobs/{blob_id}")
    error = (await response.get_json())["error"]
    assert (response.status_code, error["code"]) == (502, "unreachable")
    assert error["message"] == (
        "The school that holds this file cannot be reached right now; try again later."
    )
    assert blob_row(storage, blob_id).status == "remote"
    assert stored_files(data_dir) == []
    # a refusal of the class's node (the guardian left it): 502 too, and said so
    httpx_mock.add_response(
        url=MEDIA + blob_id, status_code=403, json={"error": "not_member", "message": "no"}
    )
    refused = await client.get(f"/api/v1/blobs/{blob_id}")
    assert refused.status_code == 502
    assert "no longer shares it" in (await refused.get_json())["error"]["message"]
    assert blob_row(storage, blob_id).status == "remote"


async def test_the_access_rule_applies_before_any_fetch(
    app: Quart, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    home_side: tuple[Actor, Any],
) -> None:  # fmt: skip
    actor, school = home_side
    data = secrets.token_bytes(100)
    blob_id = storage.call(make_mirror, ctx, actor.account_id, data, sha(data))
    # another guardian of this node, with no child in the mirrored class
    slip = invite(storage, ctx, school.teacher, school.child_id, OTHER_PHONE, "Alex Martin")
    make_guardian(storage, ctx, slip.code, OTHER_PHONE)
    stranger = app.test_client()
    await api_login(stranger, OTHER_PHONE)
    response = await stranger.get(f"/api/v1/blobs/{blob_id}")
    assert response.status_code == 404
    assert httpx_mock.get_requests(url=MEDIA + blob_id) == []
    assert blob_row(storage, blob_id).status == "remote"


def test_fetched_forgets_the_bytes_of_a_blob_deleted_meanwhile(
    storage: Storage, ctx: ServiceContext, data_dir: Path
) -> None:
    blob_id = b64url_encode(secrets.token_bytes(16))
    with posts.blob_store(ctx).incoming(blob_id) as file:
        file.write(b"ciphertext")
    assert storage.call(blobs.fetched, ctx, blob_id, sha(b"ciphertext")) is False
    assert stored_files(data_dir) == []
