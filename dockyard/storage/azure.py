"""Blobs in Azure Blob Storage (or Azurite): one container, block blobs.

URL: ``azure://<container>[?endpoint=<blob service URL>]``. Credentials come from
``options`` (``azure_account_name`` and ``azure_account_key``; the endpoint then
defaults to ``https://<account>.blob.core.windows.net``), else from the connection
string in ``AZURE_STORAGE_CONNECTION_STRING``. The container is created on first use.

Layout: blobs at ``blobs/<alg>/<hex>``, partial uploads at ``uploads/<id>``.

An upload is a block blob whose committed block list is its durable content: a
writer buffers at most one block (``BLOCK_SIZE``), stages blocks as they fill, and
on ``close()`` stages the rest and commits the list so far (only if the blob is
unchanged since the writer opened it). So any process can continue an upload from
``(upload_id, offset)`` alone: ``open_upload`` reads the committed list and keeps the
blocks that end at or before ``offset``. ``abort()`` commits nothing, leaving the
last committed state as it was; blocks it staged are dropped by the service at the
next commit.

``commit_upload`` cuts the upload's block list to the committed length, then copies it
server-side (Copy Blob from the upload's URL with a short-lived SAS, If-None-Match: *
on the target, and polling while the copy is pending), so no byte passes through this
process; a blob of that digest that already exists is kept (after waiting out a copy
still pending into it; a failed one is removed). Clients see a blob only once its
database row exists, which is written after this returns.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobSasPermissions, generate_blob_sas
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ExponentialRetry

from dockyard.storage.base import BlobStore, UploadWriter

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
# A writer's buffer: blocks of this size are staged as they fill.
BLOCK_SIZE = 4 << 20
# Reads are streamed in pieces of this size.
READ_CHUNK = 4 << 20
# A pending server-side copy is looked at after this many seconds, then ever less often.
COPY_POLL_FIRST = 0.1
COPY_POLL_MAX = 2.0
# How long the SAS that lets the service read an upload for a copy stays valid.
COPY_SAS_SECONDS = 3600
# Tolerated clock skew between this machine and the service, for SAS start times.
CLOCK_SKEW = timedelta(minutes=5)


def _new_block_id() -> str:
    # every block id of a blob must have the same length: 32 hex digits
    return uuid.uuid4().hex


def parse_connection_string(value: str) -> dict[str, str]:
    """``Key=Value;...`` pairs of an Azure Storage connection string (values may contain ``=``)."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep and key:
            fields[key.strip().lower()] = val.strip()
    return fields


def _is_missing(error: HttpResponseError) -> bool:
    return isinstance(error, ResourceNotFoundError) or error.status_code == 404


class _BlockWriter(UploadWriter):
    """Appends to an upload: stages blocks as they fill, commits the list on close."""

    def __init__(self, blob: BlobClient, base: list[str], etag: str) -> None:
        self._blob = blob
        self._blocks = list(base)
        self._etag = etag
        self._buffer = bytearray()
        self._done = False

    async def write(self, data: bytes) -> None:
        if self._done:
            raise ValueError("write to a closed upload writer")
        self._buffer += data
        while len(self._buffer) >= BLOCK_SIZE:
            block = bytes(self._buffer[:BLOCK_SIZE])
            del self._buffer[:BLOCK_SIZE]
            await self._stage(block)

    async def _stage(self, block: bytes) -> None:
        block_id = _new_block_id()
        await self._blob.stage_block(block_id, block, length=len(block))
        self._blocks.append(block_id)

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        if self._buffer:
            block, self._buffer = bytes(self._buffer), bytearray()
            await self._stage(block)
        try:
            await self._blob.commit_block_list(
                [BlobBlock(block_id) for block_id in self._blocks],
                etag=self._etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError as error:
            if _is_missing(error):
                raise KeyError(self._blob.blob_name) from None
            if error.status_code == 412:
                raise RuntimeError(
                    f"upload {self._blob.blob_name} was changed by another writer while this one wrote"
                ) from error
            raise

    async def abort(self) -> None:
        # Nothing is committed: the blob keeps its last committed block list.
        self._done = True
        self._buffer = bytearray()


class AzureBlobStore(BlobStore):
    def __init__(
        self,
        container: str,
        account_url: str,
        credential: dict[str, str] | str | None,
        *,
        account_name: str | None = None,
        account_key: str | None = None,
    ) -> None:
        if not container:
            raise ValueError("azure:// storage URLs name a container: azure://<container>")
        self.container = container
        self.account_url = account_url.rstrip("/")
        self._account_name = account_name
        self._account_key = account_key
        self._service = BlobServiceClient(
            self.account_url, credential=credential, max_single_get_size=READ_CHUNK, max_chunk_get_size=READ_CHUNK,
            # A few quick retries: while the service is away, requests should fail (503) in
            # seconds, not hang for the SDK's default minute and a half.
            # (the storage SDK's own policy; its default first backoff alone is 15 s)
            retry_policy=ExponentialRetry(initial_backoff=0.5, increment_base=2, retry_total=3, random_jitter_range=0),
            connection_timeout=5, read_timeout=60,
        )
        self._container = self._service.get_container_client(container)
        self._ready = False
        self._ready_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, str] | None = None) -> "AzureBlobStore":
        options = dict(options or {})
        parsed = urlparse(url)
        container = parsed.netloc
        if parsed.path.strip("/"):
            raise ValueError(f"azure:// storage URLs name only a container, not a path: {url!r}")
        query = parse_qs(parsed.query)
        endpoint = (query.get("endpoint") or [""])[0]
        name, key = options.get("azure_account_name", ""), options.get("azure_account_key", "")
        if name and key:
            return cls(
                container,
                endpoint or f"https://{name}.blob.core.windows.net",
                {"account_name": name, "account_key": key},
                account_name=name,
                account_key=key,
            )
        connection_string = os.environ.get(CONNECTION_STRING_ENV, "")
        if connection_string:
            fields = parse_connection_string(connection_string)
            name, key, sas = fields.get("accountname"), fields.get("accountkey"), fields.get("sharedaccesssignature")
            if not endpoint:
                endpoint = fields.get("blobendpoint", "")
            if not endpoint and name:
                protocol = fields.get("defaultendpointsprotocol", "https")
                suffix = fields.get("endpointsuffix", "core.windows.net")
                endpoint = f"{protocol}://{name}.blob.{suffix}"
            if not endpoint:
                raise ValueError(f"{CONNECTION_STRING_ENV} names no AccountName or BlobEndpoint")
            if name and key:
                credential: dict[str, str] | str | None = {"account_name": name, "account_key": key}
            elif sas:
                credential = sas.lstrip("?")
            else:
                raise ValueError(f"{CONNECTION_STRING_ENV} has neither AccountName/AccountKey nor SharedAccessSignature")
            return cls(container, endpoint, credential, account_name=name, account_key=key)
        raise ValueError(
            "azure:// storage needs credentials: the settings azure_account_name and azure_account_key, "
            f"or a connection string in {CONNECTION_STRING_ENV}"
        )

    # -- plumbing ----------------------------------------------------------
    async def _ensure_container(self) -> None:
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            try:
                await self._container.create_container()
            except ResourceExistsError:
                pass
            except HttpResponseError as error:
                # a SAS for the container alone may not create containers: the container is there
                if error.status_code != 403:
                    raise
            self._ready = True

    def _upload_client(self, upload_id: str) -> BlobClient:
        if not upload_id or "/" in upload_id or upload_id.startswith("."):
            raise ValueError("bad upload id")
        return self._container.get_blob_client(f"uploads/{upload_id}")

    def _blob_client(self, digest: str) -> BlobClient:
        algorithm, sep, hexdigest = digest.partition(":")
        if not sep or not algorithm or not hexdigest or "/" in digest:
            raise ValueError(f"bad digest {digest!r}")
        return self._container.get_blob_client(f"blobs/{algorithm}/{hexdigest}")

    def _read_sas(self, blob: BlobClient, seconds: int) -> str | None:
        if not (self._account_name and self._account_key):
            return None
        now = datetime.now(timezone.utc)
        return generate_blob_sas(
            self._account_name,
            self.container,
            blob.blob_name,
            account_key=self._account_key,
            permission=BlobSasPermissions(read=True),
            start=now - CLOCK_SKEW,
            expiry=now + timedelta(seconds=seconds),
        )

    def _readable_url(self, blob: BlobClient, seconds: int) -> str:
        """The blob's URL with read access for ``seconds`` (a SAS), as the service itself needs it for copies."""
        sas = self._read_sas(blob, seconds)
        if sas is None:
            return blob.url  # a client made with a SAS credential carries it in its URL
        return f"{blob.url}?{sas}"

    async def _committed_blocks(self, blob: BlobClient) -> tuple[list[tuple[str, int]], str]:
        """The committed (block id, size) list of a blob and its ETag, read in an order that is safe:
        the ETag first, so a commit racing in between makes the ETag stale (a later conditional
        commit fails) rather than the list."""
        try:
            properties = await blob.get_blob_properties()
            committed, _ = await blob.get_block_list("committed")
        except ResourceNotFoundError:
            raise KeyError(blob.blob_name) from None
        return [(block.id, block.size) for block in committed], properties.etag

    async def _download(self, blob: BlobClient, offset: int, length: int | None) -> AsyncIterator[bytes]:
        if length is not None and length <= 0:
            if await self._size(blob) is None:
                raise KeyError(blob.blob_name)
            return
        try:
            stream = await blob.download_blob(offset=offset, length=length, max_concurrency=1)
        except ResourceNotFoundError:
            raise KeyError(blob.blob_name) from None
        except HttpResponseError as error:
            if error.status_code == 416:  # a range starting at (or past) the end
                if await self._size(blob) is None:
                    raise KeyError(blob.blob_name) from None
                return
            raise
        async for chunk in stream.chunks():
            if chunk:
                yield chunk

    async def _size(self, blob: BlobClient) -> int | None:
        try:
            return (await blob.get_blob_properties()).size
        except ResourceNotFoundError:
            return None

    # -- uploads -----------------------------------------------------------
    async def create_upload(self, upload_id: str) -> None:
        blob = self._upload_client(upload_id)
        await self._ensure_container()
        await blob.commit_block_list([], match_condition=MatchConditions.IfMissing)

    async def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        blob = self._upload_client(upload_id)
        await self._ensure_container()
        blocks, etag = await self._committed_blocks(blob)
        keep: list[str] = []
        end = 0
        for block_id, size in blocks:
            if end + size > offset:
                break
            keep.append(block_id)
            end += size
        if end != offset:
            stored = sum(size for _, size in blocks)
            raise ValueError(
                f"upload {upload_id}: offset {offset} is not the end of a committed write "
                f"(the upload holds {stored} committed bytes; the nearest boundary below is {end})"
            )
        return _BlockWriter(blob, keep, etag)

    async def read_upload(self, upload_id: str, length: int) -> AsyncIterator[bytes]:
        blob = self._upload_client(upload_id)
        await self._ensure_container()
        async for chunk in self._download(blob, 0, length):
            yield chunk

    async def commit_upload(self, upload_id: str, digest: str, length: int) -> None:
        source = self._upload_client(upload_id)
        target = self._blob_client(digest)
        await self._ensure_container()
        if not await self._blob_complete(target):
            etag = await self._trim(source, upload_id, length)
            await self._copy(source, etag, target)
        await self.delete_upload(upload_id)

    async def _trim(self, source: BlobClient, upload_id: str, length: int) -> str:
        """Cut the upload's committed block list to its first ``length`` bytes; its ETag after that."""
        blocks, etag = await self._committed_blocks(source)
        keep, end = [], 0
        for block_id, size in blocks:
            if end + size > length:
                break
            keep.append(block_id)
            end += size
        if end != length:
            stored = sum(size for _, size in blocks)
            raise ValueError(f"upload {upload_id}: cannot commit {length} bytes of the {stored} committed")
        if len(keep) < len(blocks):
            result = await source.commit_block_list(
                [BlobBlock(block_id) for block_id in keep], etag=etag, match_condition=MatchConditions.IfNotModified
            )
            etag = result["etag"]
        return etag

    async def _copy(self, source: BlobClient, source_etag: str, target: BlobClient) -> None:
        """Copy ``source`` (as of ``source_etag``) to a new ``target`` in the service and wait until it is done.

        If-None-Match: * on the target: a blob of that digest committed meanwhile is kept."""
        try:
            await target.start_copy_from_url(
                self._readable_url(source, COPY_SAS_SECONDS),
                source_etag=source_etag,
                source_match_condition=MatchConditions.IfNotModified,
                match_condition=MatchConditions.IfMissing,
            )
        except HttpResponseError as error:
            if error.status_code not in (409, 412) or await self._size(target) is None:
                raise
            # the target exists: another commit of the same digest got there first
        if not await self._blob_complete(target):
            raise RuntimeError(f"the server-side copy to {target.blob_name} failed")

    async def _blob_complete(self, blob: BlobClient) -> bool:
        """Whether the blob exists whole: waits out a pending copy into it; removes one that failed."""
        delay = COPY_POLL_FIRST
        while True:
            try:
                properties = await blob.get_blob_properties()
            except ResourceNotFoundError:
                return False
            status = properties.copy.status if properties.copy else None
            if status in (None, "success"):
                return True
            if status != "pending":  # failed or aborted: nothing to keep
                try:
                    await blob.delete_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
                except (ResourceNotFoundError, ResourceModifiedError):
                    continue  # someone else removed or replaced it: look again
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, COPY_POLL_MAX)

    async def delete_upload(self, upload_id: str) -> None:
        blob = self._upload_client(upload_id)
        try:
            await blob.delete_blob()
        except ResourceNotFoundError:
            pass

    # -- blobs -------------------------------------------------------------
    async def put_blob(self, digest: str, data: bytes) -> None:
        blob = self._blob_client(digest)
        await self._ensure_container()
        try:
            await blob.upload_blob(data, length=len(data), overwrite=False)
        except ResourceExistsError:
            pass

    async def blob_size(self, digest: str) -> int | None:
        blob = self._blob_client(digest)
        await self._ensure_container()
        return await self._size(blob)

    async def read_blob(self, digest: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        blob = self._blob_client(digest)
        await self._ensure_container()
        async for chunk in self._download(blob, offset, length):
            yield chunk

    async def delete_blob(self, digest: str) -> None:
        blob = self._blob_client(digest)
        try:
            await blob.delete_blob()
        except ResourceNotFoundError:
            pass

    def is_outage(self, error: BaseException) -> bool:
        if isinstance(error, (ServiceRequestError, ServiceResponseError)):
            return True
        if isinstance(error, HttpResponseError) and (error.status_code or 0) >= 500:
            return True
        return super().is_outage(error)

    async def blob_url(self, digest: str, *, expires_in: int) -> str | None:
        blob = self._blob_client(digest)
        sas = self._read_sas(blob, expires_in)
        return None if sas is None else f"{blob.url}?{sas}"

    async def close(self) -> None:
        await self._service.close()
