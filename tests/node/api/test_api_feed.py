"""The class feed over the JSON API: what people send, what they get back, and clear refusals."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from node import refclient_groups as rc
from node.e2e import attachments as att
from node.storage.db import Storage
from tests.factories import api_login, csrf
from tests.feed_factories import ClassFeed, make_class_feed

TEACHER = "dubois@school.test"
PARENT_0 = "+33639980000"
PARENT_1 = "+33639980001"


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=2)


async def send(client: Client, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    headers = {"X-CSRF-Token": await csrf(client), **kw.pop("headers", {})}
    if body is None and "data" not in kw:
        return await client.open(path, method=method, headers=headers)
    if "data" in kw:
        return await client.open(path, method=method, headers=headers, **kw)
    return await client.open(path, method=method, json=body, headers=headers)


async def as_(app: Quart, login: str) -> Client:
    client = app.test_client()
    await api_login(client, login)
    return client


async def test_post_over_the_api_and_read_it_in_the_family_feed(app: Quart, cf: ClassFeed) -> None:
    teacher = await as_(app, TEACHER)
    view = await (await teacher.get(f"/api/v1/classes/{cf.class_id}/group")).get_json()
    assert view["status"] == "manager" and view["to_approve"] == []
    state, keys = rc.open_epoch_keys(view, cf.teacher.keys)
    body = rc.encrypt(
        cf.teacher.keys, view["me"], state, keys, "post", {"text": "Bonjour", "attachments": []}
    )
    response = await send(teacher, "POST", f"/api/v1/classes/{cf.class_id}/posts", body)
    assert response.status_code == 201, await response.get_data()
    post_id = (await response.get_json())["id"]

    parent = await as_(app, PARENT_0)
    page = await (await parent.get("/api/v1/feed")).get_json()
    assert [i["id"] for i in page["items"]] == [post_id]
    item = page["items"][0]
    assert (
        item["class_name"] == "CE1 A"
        and item["author_name"] == "M. Dubois"
        and item["read"] is False
    )
    pview = await (await parent.get(f"/api/v1/classes/{cf.class_id}/group")).get_json()
    pstate, pkeys = rc.open_epoch_keys(pview, cf.guardians[0].keys)
    assert rc.decrypt(item, pstate, pkeys, cf.guardians[0].keys, pview["me"])["text"] == "Bonjour"
    assert (
        await send(parent, "POST", f"/api/v1/classes/{cf.class_id}/posts/{post_id}/read", {})
    ).status_code == 200
    receipts = await (
        await teacher.get(f"/api/v1/classes/{cf.class_id}/posts/{post_id}/receipts")
    ).get_json()
    assert (receipts["read"], receipts["total"]) == (1, 2)
    forbidden = await parent.get(f"/api/v1/classes/{cf.class_id}/posts/{post_id}/receipts")
    assert forbidden.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": {"header": {}, "ct": "", "sig": ""}}, "message"),
        ({"message": {"header": {}, "ct": ""}}, "message"),
        ({"message": {}, "extra": 1}, "extra"),
        ({"message": {}, "children": "all"}, "children"),
        ({"message": {}, "comments_enabled": "yes"}, "comments_enabled"),
    ],
)
async def test_bad_post_bodies_get_a_400_naming_the_field(
    app: Quart, cf: ClassFeed, body: Any, field: str
) -> None:
    teacher = await as_(app, TEACHER)
    response = await send(teacher, "POST", f"/api/v1/classes/{cf.class_id}/posts", body)
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["field"] == field and error["message"]
    assert cf.feed_of(cf.teacher)["items"] == []  # nothing stored


async def test_a_tampered_post_is_refused(app: Quart, cf: ClassFeed) -> None:
    teacher = await as_(app, TEACHER)
    state, keys = cf.keys_of(cf.teacher)
    body = rc.encrypt(
        cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "x", "attachments": []}
    )
    body["message"]["header"]["at"] += 1  # the signature no longer matches
    response = await send(teacher, "POST", f"/api/v1/classes/{cf.class_id}/posts", body)
    assert response.status_code == 400
    assert "signature" in (await response.get_json())["error"]["message"]


async def test_encrypted_upload_in_parts_and_ranged_download(app: Quart, cf: ClassFeed) -> None:
    teacher = await as_(app, TEACHER)
    content = bytes(range(256)) * 800  # 204,800 bytes: 4 chunks
    key, prefix = att.new_file_key()
    blob = att.encrypt_file(key, prefix, content)
    started = await send(
        teacher, "POST", f"/api/v1/classes/{cf.class_id}/blobs", {"size": len(blob)}
    )
    assert started.status_code == 201
    info = await started.get_json()
    blob_id = info["id"]
    octet = {"Content-Type": "application/octet-stream"}
    late = await send(
        teacher, "PUT", f"/api/v1/blobs/{blob_id}?offset=100000", data=blob[100000:], headers=octet
    )
    assert late.status_code == 409  # parts come in order
    for start in range(0, len(blob), 100_000):
        part = await send(
            teacher,
            "PUT",
            f"/api/v1/blobs/{blob_id}?offset={start}",
            data=blob[start : start + 100_000],
            headers=octet,
        )
        assert part.status_code == 200, await part.get_data()
    wrong = await send(teacher, "POST", f"/api/v1/blobs/{blob_id}/complete", {"sha256": "A" * 43})
    assert wrong.status_code == 400
    done = await send(
        teacher, "POST", f"/api/v1/blobs/{blob_id}/complete", {"sha256": att.sha256_b64(blob)}
    )
    assert (await done.get_json())["complete"] is True

    # not attached yet: only the uploader can read it
    parent = await as_(app, PARENT_0)
    assert (await parent.get(f"/api/v1/blobs/{blob_id}")).status_code == 404
    cf.post({"text": "fichier", "attachments": []}, blobs=[blob_id])
    whole = await parent.get(f"/api/v1/blobs/{blob_id}")
    assert whole.status_code == 200 and await whole.get_data() == blob
    step = att.CHUNK_SIZE + att.TAG
    ranged = await parent.get(
        f"/api/v1/blobs/{blob_id}", headers={"Range": f"bytes={step}-{2 * step - 1}"}
    )
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes {step}-{2 * step - 1}/{len(blob)}"
    chunk = await ranged.get_data()
    assert (
        att.decrypt_chunk(key, prefix, len(content), 1, chunk)
        == content[att.CHUNK_SIZE : 2 * att.CHUNK_SIZE]
    )
    # RFC 9110 §15.5.17: 416 with the size in Content-Range, and the API's JSON error
    for bad in (f"bytes={len(blob)}-", "bytes=5-4", "bytes=0-1,3-4", "items=0-1"):
        refused = await parent.get(f"/api/v1/blobs/{blob_id}", headers={"Range": bad})
        assert refused.status_code == 416, bad
        assert refused.headers["Content-Range"] == f"bytes */{len(blob)}"
        assert refused.mimetype == "application/json"
        error = (await refused.get_json())["error"]
        assert error["code"] == "range_not_satisfiable" and error["field"] == "Range"
        assert f"the file has {len(blob)} bytes" in error["message"]


async def test_upload_refusals(app: Quart, cf: ClassFeed) -> None:
    teacher = await as_(app, TEACHER)
    too_big = await send(teacher, "POST", f"/api/v1/classes/{cf.class_id}/blobs", {"size": 10**12})
    assert too_big.status_code == 400 and "MB" in (await too_big.get_json())["error"]["message"]
    info = await (
        await send(teacher, "POST", f"/api/v1/classes/{cf.class_id}/blobs", {"size": 100})
    ).get_json()
    as_json = await send(teacher, "PUT", f"/api/v1/blobs/{info['id']}?offset=0", {"x": 1})
    assert as_json.status_code == 400
    beyond = await send(teacher, "PUT", f"/api/v1/blobs/{info['id']}?offset=0", data=b"x" * 101,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert beyond.status_code == 400
    early = await send(
        teacher, "POST", f"/api/v1/blobs/{info['id']}/complete", {"sha256": "A" * 43}
    )
    assert early.status_code == 409
    other = await as_(app, PARENT_1)
    stolen = await send(other, "PUT", f"/api/v1/blobs/{info['id']}?offset=0", data=b"x",
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert stolen.status_code == 404


async def test_feed_cursors_are_checked(app: Quart, cf: ClassFeed) -> None:
    parent = await as_(app, PARENT_0)
    for query in ("before=abc", "limit=0", "limit=51", "before=-1", "child=99999"):
        response = await parent.get(f"/api/v1/feed?{query}")
        assert response.status_code in (400, 404), query
    for i in range(3):
        cf.post({"text": f"post {i}", "attachments": []})
    first = await (await parent.get("/api/v1/feed?limit=2")).get_json()
    assert len(first["items"]) == 2 and first["next_before"]
    rest = await (
        await parent.get(f"/api/v1/feed?limit=2&before={first['next_before']}")
    ).get_json()
    assert len(rest["items"]) == 1 and rest["next_before"] is None
    assert {i["id"] for i in first["items"]} & {i["id"] for i in rest["items"]} == set()
