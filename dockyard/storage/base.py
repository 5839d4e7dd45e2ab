"""The blob store port every driver implements."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from pathlib import Path


class UploadLost(KeyError):
    """A partial upload holds fewer bytes than were acknowledged (its node lost unsynced bytes in a crash)."""


class UploadWriter(abc.ABC):
    """Appends to one partial upload.

    After ``close`` the bytes written can be read back and continued from any node.
    They need not be durable yet: ``commit_upload`` makes them durable, and a store
    whose ``close`` does not must notice bytes lost since (``upload_intact``).
    """

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    async def write_pieces(self, pieces: Sequence[bytes]) -> None:
        """Write several buffers in order (a driver may take them in one call)."""
        for piece in pieces:
            await self.write(piece)

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def abort(self) -> None:
        """Stop writing; bytes past the last closed size may be lost."""


class BlobStore(abc.ABC):
    # -- uploads -----------------------------------------------------------
    @abc.abstractmethod
    async def create_upload(self, upload_id: str) -> None: ...

    @abc.abstractmethod
    async def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        """Write from ``offset``, discarding anything stored beyond it (KeyError if the upload is gone)."""

    @abc.abstractmethod
    def read_upload(self, upload_id: str, length: int) -> AsyncIterator[bytes]:
        """The first ``length`` bytes of a partial upload."""

    async def upload_intact(self, upload_id: str, length: int) -> bool:
        """Whether the first ``length`` bytes of an upload are surely the bytes written.

        False when they may not be (the machine restarted since they were written and
        before they were durable): the caller re-reads and re-hashes them before a
        commit. Raises ``UploadLost`` if fewer bytes are stored. Stores whose ``close``
        is durable answer True.
        """
        return True

    @abc.abstractmethod
    async def commit_upload(self, upload_id: str, digest: str, length: int) -> None:
        """Make the first ``length`` bytes of an upload the blob ``digest``, durably and atomically.

        The caller has verified the digest. Committing a digest that already
        exists keeps the existing blob.
        """

    @abc.abstractmethod
    async def delete_upload(self, upload_id: str) -> None: ...

    # -- blobs -------------------------------------------------------------
    @abc.abstractmethod
    async def put_blob(self, digest: str, data: bytes) -> None: ...

    @abc.abstractmethod
    async def blob_size(self, digest: str) -> int | None: ...

    @abc.abstractmethod
    def read_blob(self, digest: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def delete_blob(self, digest: str) -> None: ...

    async def read_small(self, digest: str, length: int) -> bytes:
        """A small blob's first ``length`` bytes in one piece (fewer if it holds fewer); KeyError
        if the store doesn't hold it."""
        return b"".join([piece async for piece in self.read_blob(digest, 0, length)])

    async def blob_url(self, digest: str, *, expires_in: int) -> str | None:
        """A URL from which a client can GET the blob itself for ``expires_in`` seconds.

        Object stores answer with a SAS or presigned URL, so the server can
        redirect (307) instead of streaming; stores without one return None.
        """
        return None

    def is_outage(self, error: BaseException) -> bool:
        """Whether ``error`` means the store can't be reached right now (the server answers 503).

        Connection failures, timeouts and the store's own 5xx answers are outages;
        anything else is a bug to report, not to hide.
        """
        return isinstance(error, (ConnectionError, TimeoutError))

    def local_path(self, digest: str) -> Path | None:
        """A file holding the blob, where the driver has one (lets the server use sendfile)."""
        return None

    async def close(self) -> None:
        return None
