"""The node cannot read content (e2e.md §6.13 B.4).

Canary strings go into a post's text, a comment, a post for one family, an
attachment's name and an attachment's bytes, an alert, a private group's
name, a chat message and a report's reason; then every byte the node keeps
or emits is scanned: the database (raw files on SQLite, every row of every
table on both engines), the blob folder, everything else in the data folder,
the logs, and the decrypted Web Push payloads.  No canary, and no epoch or
file key, may appear in any encoding the node could have used.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import peewee
import pytest
from quart import Quart

from node import refclient_groups as rc
from node.e2e import attachments as att
from node.e2e.encoding import b64url_encode
from node.services import alerts, blobs, chat_moderation
from node.storage.db import Storage
from tests import chat_factories as chat
from tests.alert_factories import add_alert_group
from tests.feed_factories import as_json, make_class_feed
from tests.push_factories import FakePushService, fake_browser


def encodings(secret: bytes) -> list[bytes]:
    """The secret as raw bytes, hex, and base64 (standard and url-safe) at every alignment."""
    out = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    for shift in range(3):
        padded = b"\x00" * shift + secret
        for enc in (base64.b64encode(padded), base64.urlsafe_b64encode(padded)):
            text = enc.rstrip(b"=")
            start = (shift * 4 + 2) // 3 + 1  # skip characters mixed with the padding bytes
            out.append(text[start : len(text) - 2])
    return [o for o in out if len(o) >= 12]


def every_row(db: peewee.Database) -> bytes:
    dump = []
    for table in db.get_tables():
        for row in db.execute_sql(f'SELECT * FROM "{table}"').fetchall():
            dump.append(repr(row).encode())
    return b"\n".join(dump)


@pytest.fixture
async def service() -> AsyncIterator[FakePushService]:
    """A push service on 127.0.0.1 that keeps what it receives."""
    async with FakePushService() as push_service:
        yield push_service


def every_file(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


async def test_no_canary_or_key_reaches_the_node(
    app: Quart, storage: Storage, ctx, service: FakePushService, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    worker = app.extensions["carnet_push"]
    await worker.stop()  # driven by hand below
    canary = {
        name: f"canary-{name}-{secrets.token_hex(8)}"
        for name in ("text", "comment", "family", "filename", "alert", "group", "chat", "report")
    }
    file_canary = f"canary-file-{secrets.token_hex(8)}".encode()
    cf = make_class_feed(storage, ctx, families=2)
    browser = fake_browser(service=service)
    browser.subscribe(storage, ctx, cf.guardians[0].actor)

    # an attachment with a canary inside and in its name, uploaded as the browser does
    content = b"%PDF-1.4 " + file_canary * 5000  # several chunks
    key, prefix = att.new_file_key()
    blob = att.encrypt_file(key, prefix, content)
    upload = storage.call(blobs.start_upload, ctx, cf.teacher.actor, cf.class_id, len(blob))
    for start in range(0, len(blob), 300_000):
        storage.call(
            blobs.append_part,
            ctx,
            cf.teacher.actor,
            upload.id,
            start,
            blob[start : start + 300_000],
        )
    storage.call(blobs.complete_upload, ctx, cf.teacher.actor, upload.id, att.sha256_b64(blob))
    descriptor = {
        "blob": upload.id, "key": b64url_encode(key), "prefix": b64url_encode(prefix), "size": len(content),
        "ct_sha256": att.sha256_b64(blob), "type": "application/pdf", "name": f"{canary['filename']}.pdf",
        "kind": "file", "thumb": None,
    }  # fmt: skip
    post = cf.post({"text": canary["text"], "attachments": [descriptor]}, blobs=[upload.id])
    cf.reply(cf.guardians[1], post, "comment", {"text": canary["comment"]})
    cf.post({"text": canary["family"], "attachments": []}, children=[cf.guardians[0].child_id])

    # parent chat: a private group's name, a message in it, and a report's reason
    chat.set_chat(cf, parent_chat="open")
    g0, g1 = cf.guardians
    chat.accept(cf, g0, g1)
    group = chat.open_conversation(cf, g0, "group", [g0.me, g1.me], title=canary["group"])
    said = chat.say(cf, g0, group, canary["chat"])
    report = chat.sealed(
        cf, g1, "report", {"key": "", "note": canary["report"]},
        sorted([cf.teacher.me, g1.me]), parent=said.message,
    )  # fmt: skip
    storage.call(
        chat_moderation.report, ctx, g1.actor, cf.class_id, group, said.message,
        report["message"], keys=report["keys"],
    )  # fmt: skip
    assert chat.read(cf, g1, group) == [canary["chat"]]

    # an emergency alert, with the SMS copy left content-free (the default)
    school = add_alert_group(storage, ctx, cf)
    sent = school.send("free", canary["alert"], sms_text=canary["alert"])

    # the members do read it all
    read = cf.read(cf.guardians[0])
    assert {i["body"]["text"] for i in read} == {canary["text"], canary["family"]}
    alert = as_json(storage.call(alerts.get_alert, ctx, cf.guardians[0].actor, sent.alert_id))
    state, alert_keys = rc.open_epoch_keys(school.view(cf.guardians[0]), cf.guardians[0].keys)
    assert rc.decrypt_alert(alert["messages"][0], state, alert_keys)["text"] == canary["alert"]

    # push: decrypt what the push service receives
    assert await worker.run_once() >= 1
    await worker.stop()
    payloads = b"\n".join(repr(browser.open(r)).encode() for r in service.get_requests())
    assert b"CE1 A" in payloads  # the payload names the class...

    db = storage.db
    with db.connection_context():
        rows = every_row(db)
    haystacks = {
        "database rows": rows,
        "data folder (database files, blobs, outboxes)": every_file(ctx.config.data_dir),
        "logs": "\n".join(r.getMessage() for r in caplog.records).encode(),
        "push payloads": payloads,
    }
    assert len(rows) > 10_000 and list((ctx.config.data_dir / "blobs").rglob(upload.id))
    needles = {f"canary {k}": v.encode() for k, v in canary.items()} | {
        "canary in the file": file_canary
    }
    secrets_ = {"epoch key": cf.epoch_key, "file key": key, "alert key": school.epoch_key}
    for where, haystack in haystacks.items():
        for what, needle in needles.items():
            for form in encodings(needle):
                assert form not in haystack, f"{what} found in {where}"
        for what, secret in secrets_.items():
            for form in encodings(secret):
                assert form not in haystack, f"{what} found in {where}"


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above would fail if the node stored plaintext in any of these forms."""
    secret = b"canary-text-0123456789abcdef"
    for stored in (
        secret,
        base64.b64encode(b"x" + secret),
        base64.urlsafe_b64encode(b"xy" + secret),
        secret.hex().encode(),
    ):
        (tmp_path / "f").write_bytes(b"prefix " + stored + b" suffix")
        assert any(form in every_file(tmp_path) for form in encodings(secret))
