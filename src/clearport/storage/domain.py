"""Object keys, and the error of a store that cannot be reached."""

from __future__ import annotations

import re

from clearport.core.errors import InternalError, InvalidRequest

# S3 allows 1024 bytes; a key is a relative path of printable ASCII segments, so the same key
# names the same object in a local directory and in a bucket.
MAX_KEY_BYTES = 1024
_SEGMENT = re.compile(r"[A-Za-z0-9._=+-]+")


class StorageUnavailable(InternalError):
    """The object store did not answer, refused, or throttled beyond the retries."""

    default_code = "storage_unavailable"


def object_key(key: str) -> str:
    """`key` if it is a valid object key: relative, `/`-separated, no `.` or `..` segment."""
    segments = key.split("/")
    if (
        not key
        or len(key.encode()) > MAX_KEY_BYTES
        or any(s in ("", ".", "..") or not _SEGMENT.fullmatch(s) for s in segments)
    ):
        raise InvalidRequest(
            f"{key[:80]!r} is not an object key: a relative path of [A-Za-z0-9._=+-]."
        )
    return key
