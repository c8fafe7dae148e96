"""Housekeeping sweeps files of the blob folder that no row names (left by a crash), and only those."""

from __future__ import annotations

import dataclasses
import datetime as dt

from node.e2e.attachments import sha256_b64
from node.services import blobs, housekeeping
from node.services.context import ServiceContext
from node.services.posts import blob_store
from node.storage.db import Storage
from tests.feed_factories import make_class_feed


def test_files_without_a_row_go_once_an_hour_old_files_with_one_stay(
    storage: Storage, ctx: ServiceContext
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    teacher = cf.teacher.actor
    info = storage.call(blobs.start_upload, ctx, teacher, cf.class_id, 32)
    storage.call(blobs.append_part, ctx, teacher, info.id, 0, b"c" * 32)
    storage.call(blobs.complete_upload, ctx, teacher, info.id, sha256_b64(b"c" * 32))
    files = blob_store(ctx)
    kept = files.path(info.id)
    # what a node killed between a commit and its unlinks leaves, and a fetch cut short
    orphan = files.path("A" * 22)
    orphan.parent.mkdir(mode=0o700, exist_ok=True)
    orphan.write_bytes(b"ciphertext of a deleted post")
    part = kept.with_name(f"{info.id}.0123456789abcdef.part")
    part.write_bytes(b"half a fetch")
    assert storage.call(housekeeping.purge_expired, ctx).orphan_files == 0  # too recent
    later = dataclasses.replace(ctx, clock=lambda: ctx.now() + dt.timedelta(minutes=61))
    assert storage.call(housekeeping.purge_expired, later).orphan_files == 2
    assert kept.exists() and not orphan.exists() and not part.exists()
    assert storage.call(blobs.sweep_orphan_files, later) == 0


def test_an_empty_or_missing_blob_folder_is_nothing_to_sweep(
    storage: Storage, ctx: ServiceContext
) -> None:
    root = blob_store(ctx).root
    assert storage.call(blobs.sweep_orphan_files, ctx) == 0
    root.rmdir()  # a data folder that never held a file
    assert storage.call(blobs.sweep_orphan_files, ctx) == 0
