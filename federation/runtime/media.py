"""Attachments between schools (NP/1 §7.1): serving our classes' ciphertext, fetching a peer's.

Serving (the class's node): ``GET /np/media/{blob}``, signed, answers the
ciphertext of a complete blob attached to a live message of one of our own
classes, only to a peer that hosts an active member of that class's group
(for a post to some families: a member who is a guardian of one of its
children, or holds a key of the message); otherwise 403 ``not_member``, and
404 ``not_found`` for a blob we do not serve.

Fetching (the home node of a guardian of a mirrored class): the first time
a reader who may see the message asks for a ``remote`` blob, the ciphertext
is fetched from the class's node with a signed GET, checked against the size
and SHA-256 that node announced, written under a temporary name and renamed
into place, then the blob is marked complete.  A failure keeps nothing and
is a 502.  Rules and writes stay in ``node.services.blobs``; this module
only moves bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from federation.errors import NoSuchObject, NotAMember
from federation.runtime.client import FetchError
from node.e2e.encoding import b64url_encode
from node.errors import N_, NotFound, Unreachable
from node.services import blobs
from node.services.context import ServiceContext
from node.services.posts import blob_store
from node.storage import feed as feed_store
from node.storage import media as media_store

if TYPE_CHECKING:
    from federation.runtime.routes import Federation

log = logging.getLogger("carnet.federation")

#: Bytes read from the blob store per step when serving (as the API's download does).
READ_BYTES = 1 << 20
#: Bytes gathered in memory before each write to disk when fetching.
WRITE_BYTES = 1 << 20

MISMATCH = N_(
    "The school that holds this file sent bytes that do not match it; nothing was kept. "
    "Try again later."
)
REFUSED = N_("The school that holds this file no longer shares it with this school.")


# -- serving (the class's node) ------------------------------------------------


@dataclass(frozen=True)
class Servable:
    id: str
    size: int


def servable(ctx: ServiceContext, peer_id: int, blob_id: str) -> Servable:
    """The blob a peer may fetch; ``NotFound`` or ``NotAMember`` otherwise."""
    blob = feed_store.select_blob(blob_id)
    if blob is None or blob.status != "complete" or blob.message_id is None:
        raise NoSuchObject("no such file")
    message = blob.message
    assert message is not None  # message_id is set
    post = message.parent if message.parent_id else message
    if message.deleted_at is not None or post.deleted_at is not None:
        raise NoSuchObject("no such file")
    if blob.group.school_class.peer_id is not None:
        # a class mirrored from another node: only that node serves its media
        raise NoSuchObject("no such file")
    members = media_store.peer_members(blob.group_id, peer_id)
    if not members:
        raise NotAMember("no user of your school is a member of this file's class")
    children = feed_store.children_of_message(post.id)
    if children and not (
        media_store.any_guardian_of(list(members.values()), children)
        or media_store.any_key_for(sorted({message.id, post.id}), list(members))
    ):
        raise NotAMember("this file is for families your school does not host")
    return Servable(blob.public_id, blob.size)


def read_part(ctx: ServiceContext, blob: Servable, start: int, end: int) -> bytes:
    return blob_store(ctx).read(blob.id, start, end)


async def serve(fed: Federation, blob: Servable) -> AsyncIterator[bytes]:
    """The ciphertext in 1 MiB reads, so a 200 MB video never sits in memory whole."""
    for offset in range(0, blob.size, READ_BYTES):
        yield await fed.storage.run(
            read_part, fed.ctx, blob, offset, min(blob.size, offset + READ_BYTES)
        )


# -- fetching (the home node of a mirrored class's guardian) -------------------


class _Mismatch(Exception):
    """The bytes received are not the ones the class's node announced."""


async def fetch(fed: Federation, blob_id: str) -> None:
    """Bring a ``remote`` blob's ciphertext here from its class's node; ``Unreachable`` if not.

    Call it only after ``blobs.readable_blob`` allowed the reader.  Concurrent
    first reads of one blob wait for one fetch (one lock per blob); each fetch
    writes under its own temporary name anyway, so even two nodes' processes
    sharing a data folder could not leave a half-written file.
    """
    lock = fed.fetching.setdefault(blob_id, asyncio.Lock())
    try:
        async with lock:
            source = await fed.storage.run(blobs.remote_source, fed.ctx, blob_id)
            if source is not None:  # else: fetched by the request we waited for
                await _fetch(fed, source)
    finally:
        # the last one out forgets the lock (not a newer one made after it was forgotten)
        if fed.fetching.get(blob_id) is lock and not lock.locked():
            del fed.fetching[blob_id]


async def _fetch(fed: Federation, source: blobs.RemoteBlob) -> None:
    digest = hashlib.sha256()
    received = 0
    buffered = bytearray()
    path = f"/np/media/{source.id}"
    try:
        with blob_store(fed.ctx).incoming(source.id) as file:

            async def sink(chunk: bytes) -> None:
                nonlocal received
                received += len(chunk)
                if received > source.size:
                    raise _Mismatch(f"more than the {source.size} bytes announced")
                digest.update(chunk)
                buffered.extend(chunk)
                if len(buffered) >= WRITE_BYTES:
                    await asyncio.to_thread(file.write, bytes(buffered))
                    buffered.clear()

            answer = await fed.client.signed_download(
                source.origin, path, sink, created=int(time.time())
            )
            if answer.status != 200:
                log.warning(
                    "np: %s answered HTTP %d for %s: %r",
                    source.origin, answer.status, path, answer.body[:200],
                )  # fmt: skip
                raise Unreachable(REFUSED if answer.status in (403, 404) else blobs.UNREACHABLE)
            if received != source.size:
                raise _Mismatch(f"{received} bytes instead of {source.size}")
            if b64url_encode(digest.digest()) != source.sha256:
                raise _Mismatch("a SHA-256 other than the one announced")
            await asyncio.to_thread(file.write, bytes(buffered))
    except FetchError as error:
        log.warning("np: fetching %s from %s failed: %s", source.id, source.origin, error)
        raise Unreachable(blobs.UNREACHABLE) from None
    except _Mismatch as error:
        log.warning("np: %s sent %s for %s: nothing kept", source.origin, error, source.id)
        raise Unreachable(MISMATCH) from None
    if not await fed.storage.run(blobs.fetched, fed.ctx, source.id, source.sha256):
        raise NotFound(N_("No such file."))
