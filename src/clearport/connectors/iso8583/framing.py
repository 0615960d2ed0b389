"""ISO 8583 over TCP: each message preceded by a 2-byte big-endian length header.

A header outside [MIN_FRAME_BYTES, MAX_FRAME_BYTES] is a malformed message, found at once
rather than by waiting for bytes that will never come: the connection is reset.
"""

from __future__ import annotations

import asyncio

MIN_FRAME_BYTES = 20  # an MTI, a bitmap and one field
MAX_FRAME_BYTES = 4_096  # our messages are well under 1 KiB


class BadFrame(Exception):
    """The peer sent a length header no message of ours can have."""


def frame(payload: bytes) -> bytes:
    if not MIN_FRAME_BYTES <= len(payload) <= MAX_FRAME_BYTES:
        raise BadFrame("a message outside the frame bounds")
    return len(payload).to_bytes(2, "big") + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """The next message; `asyncio.IncompleteReadError` when the peer closed the connection."""
    header = await reader.readexactly(2)
    length = int.from_bytes(header, "big")
    if not MIN_FRAME_BYTES <= length <= MAX_FRAME_BYTES:
        raise BadFrame("a length header outside the frame bounds")
    return await reader.readexactly(length)
