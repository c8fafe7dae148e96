"""SIGKILL during an encrypted attachment's upload: rows and files agree, the client resumes.

Each trial's child uploads one file as the browser does, through the real
services: ``start_upload`` (the blob row), ``append_part`` for each part
(the bytes written and fsynced, then ``received`` committed) and
``complete_upload`` (the node's SHA-256 checked against the client's).
It reports each answer as the client would have received it.  The parent
kills it at a random instant and, as the restarted node:

* the database checks clean;
* every blob row and its file agree: a complete blob's file has its size
  and checksum; an upload in progress has at least its ``received`` bytes
  on disk, and they are the bytes sent; no file without its row;
* the uploads completed in earlier trials are intact;
* the client resumes from what it was last told (a part sent again after a
  lost answer is written again at its offset) or, if it never learnt the
  upload's id, starts again: one complete blob per file, never two; an
  upload abandoned that way is deleted with its bytes by housekeeping.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import random
import signal
from pathlib import Path
from typing import Any

import pytest

from node.e2e.encoding import b64url_encode
from node.services import blobs, housekeeping
from node.services.context import Actor, ServiceContext
from node.storage import feed as feed_store
from node.storage.blobstore import BlobStore
from tests.faults import kill
from tests.faults.conftest import AlertSchool

pytestmark = pytest.mark.transport

#: bytes per part: three parts per file, each written and fsynced in its own request
PART = 64 * 1024
SIZE = 3 * PART - 1000
CALIBRATION = 2  # unkilled runs that time the upload first


@dataclasses.dataclass
class Uploader:
    ctx: ServiceContext
    teacher: Actor
    class_id: int
    store: BlobStore

    @property
    def folder(self) -> Path:
        return self.store.root.parent


def _file(n: int) -> bytes:
    return random.Random(n).randbytes(SIZE)


def _checksum(data: bytes) -> str:
    return b64url_encode(hashlib.sha256(data).digest())


def _upload(
    node: Uploader, data: bytes, reports: Any = None, resume: tuple[str, int] | None = None
) -> str:
    """The browser's upload: start (unless resuming), parts in order, complete."""
    if resume is None:
        blob_id = blobs.start_upload(node.ctx, node.teacher, node.class_id, len(data)).id
        offset = 0
        if reports is not None:
            reports.report(f"started {blob_id}")
    else:
        blob_id, offset = resume
    while offset < len(data):
        info = blobs.append_part(
            node.ctx, node.teacher, blob_id, offset, data[offset : offset + PART]
        )
        offset = info.received
        if reports is not None:
            reports.report(f"received {blob_id} {offset}")
    blobs.complete_upload(node.ctx, node.teacher, blob_id, _checksum(data))
    if reports is not None:
        reports.report(f"complete {blob_id}")
    return blob_id


def _what_the_client_knows(reports: list[str]) -> tuple[str, int] | None | str:
    """(blob id, acknowledged bytes) to resume, None to start again, "done" when complete."""
    if not reports:
        return None
    last = reports[-1].split()
    if last[0] == "complete":
        return "done"
    return last[1], int(last[2]) if last[0] == "received" else 0


def _files(node: Uploader) -> set[str]:
    return {p.name for p in node.store.root.glob("*/*")}


def _check_blobs(node: Uploader, sent: dict[str, bytes]) -> dict[str, str]:
    """Rows and files agree; returns blob id → status."""
    rows = {b.public_id: b for b in feed_store.Blob.select()}
    assert _files(node) <= set(rows), "a file on disk has no blob row"
    for blob_id, blob in rows.items():
        data = sent[blob_id]
        on_disk = node.store.path(blob_id)
        if blob.status == "complete":
            assert blob.received == blob.size == len(data)
            assert on_disk.read_bytes() == data and blob.sha256 == _checksum(data)
        else:
            assert blob.status == "uploading"
            if blob.received:
                written = on_disk.read_bytes()
                assert len(written) >= blob.received  # a part written, its commit killed
                assert written == data[: len(written)]
    return {blob_id: blob.status for blob_id, blob in rows.items()}


@pytest.fixture
def node(school_folder: AlertSchool) -> Uploader:
    school = school_folder
    # every trial's upload stays unattached: the per-account limit on those is not tested here
    config = dataclasses.replace(school.ctx.config, uploads_in_progress_per_account=10_000)
    ctx = dataclasses.replace(school.ctx, config=config)
    return Uploader(ctx, school.teacher, school.class_id, BlobStore(school.folder / "blobs"))


def test_an_upload_killed_midway_leaves_rows_and_files_that_agree_and_resumes(
    node: Uploader,
) -> None:
    node_folder = node.folder
    sent: dict[str, bytes] = {}  # blob id → the file it belongs to

    def operation(n: int) -> Any:
        def upload(progress: kill.Progress) -> None:
            _upload(node, _file(n), progress)

        return upload

    window = kill.calibrate(node_folder, [operation(n) for n in range(CALIBRATION)])
    seed, delays = kill.delays("upload", window, kill.trials())
    table = kill.Table("upload", seed, window)
    print(f"\nupload: seed {seed}, {len(delays)} trials, window {window * 1000:.1f} ms")
    with kill.open_node(node_folder):
        complete = [b.public_id for b in feed_store.Blob.select()]
        for n, blob_id in enumerate(complete):
            sent[blob_id] = _file(n)
    for n, delay in enumerate(delays, start=CALIBRATION):
        data = _file(n)
        outcome = kill.run_and_kill(node_folder, operation(n), delay)
        with kill.open_node(node_folder) as db:
            kill.check_database(db)
            new = {b.public_id for b in feed_store.Blob.select()} - set(sent)
            assert len(new) <= 1
            sent.update(dict.fromkeys(new, data))
            states = _check_blobs(node, sent)
            assert all(states[blob_id] == "complete" for blob_id in complete), "an upload was lost"
            knows = _what_the_client_knows(outcome.reports)
            mine = bool(new) and states[next(iter(new))] == "complete"
            table.count(outcome, mine)
            if knows == "done":
                assert mine
                blob_id = next(iter(new))
            elif knows is None:  # no answer to the start: the client starts over
                blob_id = _upload(node, data)
                sent[blob_id] = data
                table.note("abandoned", len(new))
            else:
                assert isinstance(knows, tuple)
                blob_id = _upload(node, data, resume=knows)
                table.replays_absorbed += 1
            complete.append(blob_id)
            states = _check_blobs(node, sent)
            assert [states[b] for b in complete] == ["complete"] * len(complete)
            assert sum(1 for s in states.values() if s == "complete") == len(complete)
    # a day later housekeeping deletes the unattached uploads, rows and bytes together
    later = node.ctx.now() + blobs.STALE_AFTER + dt.timedelta(minutes=1)
    with kill.open_node(node_folder) as db:
        blobs.purge_stale_uploads(dataclasses.replace(node.ctx, clock=lambda: later))
        assert feed_store.Blob.select().count() == 0 and _files(node) == set()
        kill.check_database(db)
    print(table.line())
    assert table.killed > 0


def test_files_a_purge_killed_after_its_commit_left_behind_are_swept_by_the_next_housekeeping(
    node: Uploader,
) -> None:
    """Rows go first, files after the commit: a crash in between left ciphertext behind for good."""
    node_folder = node.folder
    abandoned: list[str] = []
    with kill.open_node(node_folder):
        for n in range(2):  # two uploads nobody attached
            abandoned.append(_upload(node, _file(n)))
        blob_id = blobs.start_upload(node.ctx, node.teacher, node.class_id, SIZE).id
        blobs.append_part(node.ctx, node.teacher, blob_id, 0, _file(9)[:PART])
    part = node.store.path(abandoned[0]).with_name(f"{abandoned[0]}.0123456789abcdef.part")
    part.write_bytes(b"a fetch cut short")
    day = node.ctx.now() + blobs.STALE_AFTER + dt.timedelta(minutes=1)
    next_day = dataclasses.replace(node.ctx, clock=lambda: day)

    def purge_then_die(progress: kill.Progress) -> None:
        def die(self: BlobStore, public_id: str) -> None:  # the instant after the commit
            os.kill(os.getpid(), signal.SIGKILL)

        BlobStore.delete = die  # type: ignore[method-assign]  # in the child only
        blobs.purge_stale_uploads(next_day)

    outcome = kill.run_and_kill(node_folder, purge_then_die, delay=None)
    assert outcome.killed
    with kill.open_node(node_folder) as db:
        kill.check_database(db)
        assert feed_store.Blob.select().count() == 0  # the in-progress upload was a day old too
        assert {a for a in abandoned if node.store.path(a).exists()} == set(abandoned)
        # the restarted node's housekeeping, an hour later: an upload being written
        # keeps its file (its row is there)
        later = dataclasses.replace(
            node.ctx, clock=lambda: day + blobs.ORPHAN_AFTER + dt.timedelta(minutes=1)
        )
        fresh = blobs.start_upload(later, node.teacher, node.class_id, SIZE).id
        blobs.append_part(later, node.teacher, fresh, 0, _file(10)[:PART])
        purged = housekeeping.purge_expired(later)
        assert purged.orphan_files == 4  # two uploads, the one in progress, the .part file
        assert _files(node) == {fresh}
        kill.check_database(db)
