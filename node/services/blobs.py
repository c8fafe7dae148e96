"""Encrypted attachment uploads and downloads.

Who may do what:
- an approved member of a class uploads ciphertext for a post or comment of
  theirs: declare the size, send parts in order, then the SHA-256 the
  client computed; the node checks both before the blob can be attached;
- a member who can see the message a blob belongs to downloads it, by
  ranges (video seeking); the uploader may read their own unattached blob;
- uploads never attached within a day are deleted by housekeeping;
- an attachment of a class of another school's node (a mirror, NP/1) is
  ``remote`` until a reader asks for it: the same access rule applies, then
  the node fetches the ciphertext from that node, checks its size and
  SHA-256 against what that node announced, and keeps it (``fetched``).
The node never sees a key, a name or a type: the descriptor is inside the
encrypted message.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from node.e2e.encoding import b64url_encode
from node.errors import N_, Conflict, Invalid, NotFound, RateLimited, Unreachable
from node.services import groups
from node.services.context import Actor, ServiceContext
from node.services.posts import blob_store, can_see
from node.storage import feed as store
from node.storage import peers as peer_store
from node.storage.db import write_transaction

STALE_AFTER = dt.timedelta(hours=24)
#: a file with no row is left over from a crash once it is this old (``sweep_orphan_files``)
ORPHAN_AFTER = dt.timedelta(hours=1)
#: why a mirrored attachment cannot be read now (NP/1 media, fetched on first read)
UNREACHABLE = N_("The school that holds this file cannot be reached right now; try again later.")


@dataclass(frozen=True)
class BlobInfo:
    id: str
    size: int
    received: int
    complete: bool
    #: largest part the node accepts in one request
    part_bytes: int


def _info(ctx: ServiceContext, blob: Any) -> BlobInfo:
    part = ctx.config.max_request_bytes
    return BlobInfo(blob.public_id, blob.size, blob.received, blob.status == "complete", part)


def start_upload(ctx: ServiceContext, actor: Actor, class_id: int, size: Any) -> BlobInfo:
    limit = ctx.config.max_attachment_bytes
    if type(size) is not int or not 16 <= size <= limit:
        raise Invalid(
            N_("An attachment must be at most %(mb)s MB."), field="size", mb=str(limit // 1_000_000)
        )
    with write_transaction():
        a = groups.require_member(ctx, actor, class_id)
        _check_quota(ctx, actor, size)
        blob = store.Blob.create(
            public_id=b64url_encode(secrets.token_bytes(16)), owner=actor.account_id, group=a.group,
            size=size, received=0, status="uploading", created_at=ctx.now(),
        )  # fmt: skip
        return _info(ctx, blob)


def _check_quota(ctx: ServiceContext, actor: Actor, size: int) -> None:
    """Refuse an upload past the account's uploads in progress or its bytes for the day.

    A stolen session, or a buggy client retrying, cannot fill the school's disk.
    """
    pending, recent = store.upload_usage(actor.account_id, ctx.now() - dt.timedelta(days=1))
    if pending >= ctx.config.uploads_in_progress_per_account:
        raise RateLimited(
            N_(
                "Too many of your files are waiting to be attached to a message. Post them first, or try again tomorrow."
            ),
            retry_after=60,
        )
    quota = ctx.config.upload_bytes_per_account_per_day
    if recent + size > quota:
        raise RateLimited(
            N_("You can send at most %(mb)s MB of files per day. Try again tomorrow."),
            retry_after=3600, mb=str(quota // 1_000_000),
        )  # fmt: skip


def _own_upload(actor: Actor, blob_id: str) -> Any:
    blob = store.select_blob(blob_id, lock=True)
    if blob is None or blob.owner_id != actor.account_id:
        raise NotFound(N_("No such upload."))
    return blob


def append_part(
    ctx: ServiceContext, actor: Actor, blob_id: str, offset: Any, data: bytes
) -> BlobInfo:
    """Write the next part; a part already written (a retry) is accepted again at its offset."""
    if type(offset) is not int or offset < 0:
        raise Invalid(N_("The offset must be a whole number."), field="offset")
    if not data or len(data) > ctx.config.max_request_bytes:
        raise Invalid(N_("A part must not be empty."), field="body")
    with write_transaction():
        blob = _own_upload(actor, blob_id)
        if blob.status != "uploading":
            raise Conflict(N_("This upload is already complete."))
        if offset > blob.received:
            raise Conflict(N_("Parts must be sent in order; the node has %(received)s bytes."),
                           received=str(blob.received))  # fmt: skip
        if offset + len(data) > blob.size:
            raise Invalid(N_("This part goes beyond the declared size."), field="body")
        blob.received = blob_store(ctx).append(blob.public_id, offset, data)
        blob.save()
        return _info(ctx, blob)


def complete_upload(ctx: ServiceContext, actor: Actor, blob_id: str, sha256: Any) -> BlobInfo:
    with write_transaction():
        blob = _own_upload(actor, blob_id)
        if blob.status == "complete":
            return _info(ctx, blob)
        if blob.received != blob.size:
            raise Conflict(N_("The upload is incomplete: %(received)s of %(size)s bytes."),
                           received=str(blob.received), size=str(blob.size))  # fmt: skip
        if not isinstance(sha256, str) or blob_store(ctx).sha256(blob.public_id) != sha256:
            raise Invalid(N_("The uploaded bytes do not match their checksum; upload the file again."),
                          field="sha256")  # fmt: skip
        blob.sha256, blob.status, blob.completed_at = sha256, "complete", ctx.now()
        blob.save()
        return _info(ctx, blob)


@dataclass(frozen=True)
class Readable:
    id: str
    size: int
    #: the bytes are still on the class's node (a mirrored class): fetch them first
    remote: bool = False


def readable_blob(ctx: ServiceContext, actor: Actor, blob_id: str) -> Readable:
    """Check that the actor may read a blob; NotFound otherwise (no existence oracle)."""
    blob = store.select_blob(blob_id)
    if blob is None or blob.status not in ("complete", "remote"):
        raise NotFound(N_("No such file."))
    remote = blob.status == "remote"
    if blob.owner_id == actor.account_id and not remote:
        return Readable(blob.public_id, blob.size)
    if blob.message_id is None:
        raise NotFound(N_("No such file."))
    message = blob.message
    assert message is not None  # message_id is set
    post = message.parent if message.parent_id else message
    a = groups.access(ctx, actor, post.group.school_class_id)
    if not a.is_member or message.deleted_at is not None or not can_see(a, post):
        raise NotFound(N_("No such file."))
    return Readable(blob.public_id, blob.size, remote)


@dataclass(frozen=True)
class RemoteBlob:
    """Where a mirrored attachment's ciphertext is, and what it must be."""

    id: str
    size: int
    #: base64url SHA-256 of the whole ciphertext, as the class's node announced it
    sha256: str
    #: the class's node
    origin: str


def remote_source(ctx: ServiceContext, blob_id: str) -> RemoteBlob | None:
    """The node to fetch a ``remote`` blob from; None once it is here (or gone).

    Call it only after ``readable_blob`` allowed the reader.
    """
    blob = store.select_blob(blob_id)
    if blob is None or blob.status != "remote":
        return None
    peer_id = blob.group.school_class.peer_id
    peer = peer_store.select_peer(peer_id) if peer_id is not None else None
    if peer is None or not blob.sha256:
        # a mirror without its peer cannot be fetched: say so rather than 500
        raise Unreachable(UNREACHABLE)
    return RemoteBlob(blob.public_id, blob.size, blob.sha256, peer.origin)


def fetched(ctx: ServiceContext, blob_id: str, sha256: str) -> bool:
    """The checked ciphertext of a ``remote`` blob is in the blob store: it is complete now.

    False (and the bytes are dropped) if the blob was deleted meanwhile; a
    blob already complete (a concurrent first read) stays as it is.
    """
    with write_transaction():
        blob = store.select_blob(blob_id, lock=True)
        if blob is not None and blob.status == "remote" and blob.sha256 == sha256:
            blob.status, blob.received, blob.completed_at = "complete", blob.size, ctx.now()
            blob.save()
    if blob is None:
        blob_store(ctx).delete(blob_id)
        return False
    return blob.status == "complete"


def read_range(ctx: ServiceContext, blob: Readable, start: int, end: int) -> bytes:
    return blob_store(ctx).read(blob.id, start, end)


def purge_stale_uploads(ctx: ServiceContext) -> int:
    """Housekeeping: delete uploads never attached to a message within a day."""
    with write_transaction():
        stale = store.select_stale_blobs(ctx.now() - STALE_AFTER)
        for blob in stale:
            blob.delete_instance()
    for blob in stale:
        blob_store(ctx).delete(blob.public_id)
    return len(stale)


def sweep_orphan_files(ctx: ServiceContext) -> int:
    """Housekeeping: delete files of the blob folder that no blob row names.

    Rows are deleted first and their files after the commit (a file deleted
    before a commit that then fails would leave a row without its bytes), so
    a node that dies in between leaves ciphertext nobody can reach, and a
    fetch cut short leaves its ``.part`` file.  Only files older than
    ``ORPHAN_AFTER`` go: a row is always committed before its file is first
    written, and a fetch in flight writes its ``.part`` for seconds.
    """
    files = blob_store(ctx)
    cutoff = (ctx.now() - ORPHAN_AFTER).replace(tzinfo=dt.UTC).timestamp()
    old = [(name, path) for name, path, mtime in files.stored() if mtime < cutoff]
    ids = sorted({name.split(".", 1)[0] for name, _ in old})
    known = store.known_blob_ids(ids)
    swept = 0
    for name, path in old:
        if name.endswith(".part") or name not in known:
            path.unlink(missing_ok=True)
            swept += 1
    return swept
