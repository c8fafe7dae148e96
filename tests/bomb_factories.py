"""Compression bombs for the tests of the node's outgoing HTTP clients, and a body that counts reads.

``bomb("gzip")`` and ``bomb("deflate")`` inflate to 10 MB of zeros from
about 10 KB; ``CountedStream`` serves a body to httpx and counts the bytes a
client took from it, so a test can show that nothing was read (and so
nothing inflated) without measuring memory or time.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import AsyncIterator

import httpx

#: What a bomb inflates to.
ZEROS = 10 * 1024 * 1024


@functools.cache
def bomb(encoding: str) -> bytes:
    """10 MB of zeros as a gzip or zlib ("deflate") stream of about 10 KB.

    Compressing 10 MB takes half a second; after a full flush the same 1 MB
    block compresses to the same bytes, so two blocks are compressed and the
    second repeated, and the trailer's checksum and size are written for 10 MB.
    """
    block = bytes(1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()  # the last (empty) block, then a trailer for 2 MB: replaced
    if encoding == "gzip":
        end = end[:-8] + struct.pack("<II", zlib.crc32(bytes(ZEROS)), ZEROS)
    else:
        end = end[:-4] + struct.pack(">I", zlib.adler32(bytes(ZEROS)))
    return first + again * (ZEROS // len(block) - 1) + end


class CountedStream(httpx.AsyncByteStream):
    """A body handed out in 16 KB pieces, counting the bytes the client took."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 16384):
            piece = self.body[start : start + 16384]
            self.taken += len(piece)
            yield piece
