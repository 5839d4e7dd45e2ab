"""The bytes of small blobs, remembered by digest, so a pull of one needs no file opened.

Safe to share between repositories and registries, and across deletes, because it holds
bytes and never rights: a blob's bytes are named by their digest and can't change, and the
caller asks the database whether the repository may see the blob (``BlobService.stat``) on
every request before it asks here. Bounded in entry size and in total bytes, least recently
used first out.
"""

from __future__ import annotations

from collections import OrderedDict

ENTRY_BYTES = 64 << 10  # blobs up to this size are remembered ...
TOTAL_BYTES = 16 << 20  # ... up to this many bytes in all


class ContentCache:
    def __init__(self, entry_bytes: int = ENTRY_BYTES, total_bytes: int = TOTAL_BYTES) -> None:
        self.entry_bytes = entry_bytes
        self.total_bytes = total_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    def get(self, digest: str) -> bytes | None:
        data = self._entries.get(digest)
        if data is not None:
            self._entries.move_to_end(digest)
        return data

    def put(self, digest: str, data: bytes) -> None:
        if len(data) > self.entry_bytes or digest in self._entries:
            return
        self._entries[digest] = data
        self._size += len(data)
        while self._size > self.total_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._size -= len(dropped)
