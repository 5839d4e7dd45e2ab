"""Reading a small file on the event loop, only when that can't wait on the device.

``preadv2(RWF_NOWAIT)`` copies what the page cache holds and refuses (EAGAIN) rather than
start a read from the device. A just-pushed or often-pulled small blob is read in a few
microseconds this way, where a worker thread's round trip costs tens; anything not cached
is left to the caller's thread.
"""

from __future__ import annotations

import os

_NOWAIT = getattr(os, "RWF_NOWAIT", None)


def read_if_cached(path: str, size: int) -> bytes | None:
    """The file's first ``size`` bytes if all are in the page cache (and the file holds them),
    else None. Raises FileNotFoundError for a missing file."""
    if _NOWAIT is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        buffer = bytearray(size)
        try:
            read = os.preadv(fd, [buffer], 0, _NOWAIT)
        except (BlockingIOError, OSError):  # not cached, or the filesystem can't say (EOPNOTSUPP)
            return None
        return bytes(buffer) if read == size else None
    finally:
        os.close(fd)

