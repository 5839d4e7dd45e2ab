"""Blobs in an S3 bucket (AWS, or any S3-compatible store such as Ceph radosgw or MinIO).

URL: ``s3://<bucket>[/<prefix>]?endpoint=http://host:port&region=us-east-1``. Without an
endpoint it talks to AWS (virtual-hosted addressing); with one, path-style. Credentials
come from ``options["s3_access_key_id"]`` / ``options["s3_secret_access_key"]``, else
from botocore's usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, profiles,
instance roles). The bucket is created if missing.

Layout under the prefix:

- ``blobs/<alg>/<hex>``: a blob, written whole (a PUT or a server-side copy) so it
  appears atomically.
- ``uploads/<id>``: the key of the upload's S3 multipart upload (and, once the bytes
  had to be read back, the completed object holding its first bytes).
- ``uploads/<id>.tail.<offset>``: the upload's state as one writer session closed it at
  ``offset``. The body is the tail: the bytes past the last part, fewer than a part.
  The metadata names the multipart upload (``mpu``), how many of its parts hold the
  bytes before the tail (``parts``, the parts 1..n), how many bytes they hold (``base``)
  and how many of them the completed ``uploads/<id>`` object holds (``readable``).

So any process can continue an upload from (id, offset) alone: it reads the record at
that offset, keeps its tail in memory (less than a part) and uploads parts from n+1 on.
Parts past n (of a writer that aborted, or of a session whose size never reached the
database) are ignored and get overwritten. A close writes the new record and deletes
every other record but the one it started from, which stays for a caller whose size
update failed. Memory stays below a part plus one write whatever the blob's size.

The parts of an unfinished multipart upload can't be read. Reading an upload back (only
needed to rebuild a hash state after a restart) first completes the multipart upload
into the object ``uploads/<id>`` and starts a new one whose first parts are server-side
copies of it (UploadPartCopy), so reading is a ranged GET and writing goes on.

Committing completes the multipart upload (the tail becomes its last part by a
server-side copy of the record) and copies the result server-side to its blob key:
no byte passes through this process. An upload smaller than a part is just its record,
copied to the blob key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlparse

from dockyard.storage.base import BlobStore, UploadWriter

MiB = 1 << 20
GiB = 1 << 30
READ_CHUNK = 1 * MiB
MAX_PARTS = 10_000
MAX_COPY = 5 * GiB  # the largest CopyObject, and the largest part of a multipart copy
DEFAULT_REGION = "us-east-1"

_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")


def part_size(number: int) -> int:
    """How many bytes part ``number`` holds: S3's 5 MiB minimum, larger late in big blobs.

    10,000 parts at most: 4,000 of 5 MiB (~20 GiB), then 4,000 of 25 MiB and 2,000
    of 125 MiB make room for ~350 GiB, and only blobs past 20 GiB buffer more than 5 MiB.
    """
    if number <= 4000:
        return 5 * MiB
    if number <= 8000:
        return 25 * MiB
    return 125 * MiB


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _missing(error: Exception) -> bool:
    return _code(error) in ("NoSuchKey", "404", "NotFound")


@dataclass(frozen=True, slots=True)
class _Record:
    mpu: str  # the multipart upload's id; "" until a first part is written
    parts: int  # parts 1..parts hold bytes [0, base)
    base: int
    readable: int  # bytes [0, readable) are in the completed object uploads/<id>

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> _Record:
        return cls(
            metadata.get("mpu", ""),
            int(metadata.get("parts", 0)),
            int(metadata.get("base", 0)),
            int(metadata.get("readable", 0)),
        )

    def metadata(self) -> dict[str, str]:
        return {"mpu": self.mpu, "parts": str(self.parts), "base": str(self.base), "readable": str(self.readable)}


class _S3Writer(UploadWriter):
    def __init__(self, store: S3Store, upload_id: str, offset: int, record: _Record, tail: bytes) -> None:
        self._store = store
        self._id = upload_id
        self._opened_at = offset
        self._record = record
        self._buffer = bytearray(tail)
        self._done = False

    async def write(self, data: bytes) -> None:
        if self._done:
            raise ValueError("the writer is closed")
        self._buffer += data
        while len(self._buffer) >= (size := part_size(self._record.parts + 1)):
            part = bytes(memoryview(self._buffer)[:size])
            self._record = await self._store._upload_part(self._id, self._record, part)
            del self._buffer[:size]

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        offset = self._record.base + len(self._buffer)
        await self._store._put_record(self._id, offset, self._record, bytes(self._buffer))
        self._buffer = bytearray()
        await self._store._drop_records(self._id, keep={self._opened_at, offset})

    async def abort(self) -> None:
        # Parts written since the open are past the record's count: ignored, later overwritten.
        self._done = True
        self._buffer = bytearray()


class S3Store(BlobStore):
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("an s3:// storage URL needs a bucket: s3://<bucket>")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint or None
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        self._access_key_id = access_key_id or None
        self._secret_access_key = secret_access_key or None
        self._client = None
        self._client_context = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, str] | None = None) -> S3Store:
        options = options or {}
        parsed = urlparse(url)
        query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"unknown s3:// URL parameters: {', '.join(sorted(unknown))}")
        return cls(
            parsed.netloc,
            prefix=parsed.path,
            endpoint=query.get("endpoint"),
            region=query.get("region"),
            access_key_id=options.get("s3_access_key_id") or None,
            secret_access_key=options.get("s3_secret_access_key") or None,
        )

    # -- the client --------------------------------------------------------------
    async def _s3(self):
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                from aiobotocore.config import AioConfig
                from aiobotocore.session import get_session

                config = AioConfig(
                    signature_version="s3v4",
                    s3={"addressing_style": "path" if self.endpoint else "auto"},
                    retries={"max_attempts": 3, "mode": "standard"},
                    max_pool_connections=32,
                    # checksums only where the API requires them: S3-compatible stores
                    # differ in which of botocore's newer default CRC checksums they know
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                context = get_session().create_client(
                    "s3",
                    region_name=self.region,
                    endpoint_url=self.endpoint,
                    aws_access_key_id=self._access_key_id,
                    aws_secret_access_key=self._secret_access_key,
                    config=config,
                )
                client = await context.__aenter__()
                try:
                    await self._ensure_bucket(client)
                except BaseException:
                    await context.__aexit__(None, None, None)
                    raise
                self._client_context, self._client = context, client
        return self._client

    async def _ensure_bucket(self, client) -> None:
        from botocore.exceptions import ClientError

        try:
            await client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as e:
            if _code(e) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        arguments = {"Bucket": self.bucket}
        if self.region != DEFAULT_REGION:
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await client.create_bucket(**arguments)
        except ClientError as e:
            if _code(e) not in ("BucketAlreadyOwnedByYou",):
                raise

    def is_outage(self, error: BaseException) -> bool:
        from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError

        if isinstance(error, (BotoConnectionError, HTTPClientError)):
            return True
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return status >= 500 or _code(error) in ("ServiceUnavailable", "SlowDown", "InternalError")
        return super().is_outage(error)

    async def close(self) -> None:
        context, self._client_context, self._client = self._client_context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)

    # -- keys ------------------------------------------------------------------------
    def _blob_key(self, digest: str) -> str:
        match = _DIGEST.fullmatch(digest)
        if match is None:
            raise ValueError(f"bad digest {digest[:80]!r}")
        return f"{self.prefix}blobs/{match.group(1)}/{match.group(2)}"

    def _upload_key(self, upload_id: str) -> str:
        if not _UPLOAD_ID.fullmatch(upload_id) or upload_id.startswith("."):
            raise ValueError("bad upload id")
        return f"{self.prefix}uploads/{upload_id}"

    def _record_key(self, upload_id: str, offset: int) -> str:
        return f"{self._upload_key(upload_id)}.tail.{offset}"

    # -- upload state --------------------------------------------------------------
    async def _get_record(self, upload_id: str, offset: int) -> tuple[_Record, bytes]:
        from botocore.exceptions import ClientError

        s3 = await self._s3()
        try:
            response = await s3.get_object(Bucket=self.bucket, Key=self._record_key(upload_id, offset))
        except ClientError as e:
            if _missing(e):
                raise KeyError(upload_id) from None
            raise
        async with response["Body"] as body:
            tail = await body.read()
        return _Record.from_metadata(response.get("Metadata", {})), tail

    async def _put_record(self, upload_id: str, offset: int, record: _Record, tail: bytes) -> None:
        s3 = await self._s3()
        await s3.put_object(
            Bucket=self.bucket,
            Key=self._record_key(upload_id, offset),
            Body=tail,
            Metadata=record.metadata(),
            ContentType="application/octet-stream",
        )

    async def _list_keys(self, prefix: str) -> list[str]:
        s3 = await self._s3()
        keys: list[str] = []
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    async def _delete_keys(self, keys: list[str]) -> None:
        s3 = await self._s3()
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            if len(batch) == 1:
                await s3.delete_object(Bucket=self.bucket, Key=batch[0])
            else:
                await s3.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
                )

    async def _drop_records(self, upload_id: str, keep: set[int]) -> None:
        """Delete the upload's records but those at the offsets in ``keep``."""
        prefix = self._record_key(upload_id, 0)[:-1]
        keep_keys = {prefix + str(offset) for offset in keep}
        stale = [key for key in await self._list_keys(prefix) if key not in keep_keys]
        await self._delete_keys(stale)

    async def _upload_part(self, upload_id: str, record: _Record, data: bytes) -> _Record:
        number = record.parts + 1
        if number > MAX_PARTS:
            raise ValueError("the upload is too large for one S3 multipart upload")
        s3 = await self._s3()
        key = self._upload_key(upload_id)
        if not record.mpu:
            created = await s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType="application/octet-stream"
            )
            record = replace(record, mpu=created["UploadId"])
        await s3.upload_part(
            Bucket=self.bucket, Key=key, UploadId=record.mpu, PartNumber=number, Body=data, ContentLength=len(data)
        )
        return replace(record, parts=number, base=record.base + len(data))

    async def _parts(self, upload_id: str, record: _Record) -> list[dict]:
        """Every part of the record's multipart upload, in order; checks that 1..n are the recorded ones.

        Parts past n (of aborted writers) are there too: radosgw refuses to complete
        a multipart upload with fewer parts than were uploaded (AWS would take the
        first n alone), so completing takes them all and only the first ``base``
        bytes of the result count.
        """
        s3 = await self._s3()
        found: dict[int, dict] = {}
        paginator = s3.get_paginator("list_parts")
        async for page in paginator.paginate(Bucket=self.bucket, Key=self._upload_key(upload_id), UploadId=record.mpu):
            for part in page.get("Parts", []):
                found[part["PartNumber"]] = part
        recorded = [found.get(number) for number in range(1, record.parts + 1)]
        if None in recorded or sum(part["Size"] for part in recorded) != record.base:
            raise RuntimeError(f"upload {upload_id}: its multipart upload does not hold the recorded parts")
        return [found[number] for number in sorted(found)]

    async def _complete(self, upload_id: str, record: _Record, parts: list[dict]) -> None:
        s3 = await self._s3()
        await s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self._upload_key(upload_id),
            UploadId=record.mpu,
            MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]},
        )

    async def _abort_multiparts(self, upload_id: str, keep: str = "") -> None:
        s3 = await self._s3()
        key = self._upload_key(upload_id)
        paginator = s3.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
            for upload in page.get("Uploads", []):
                if upload["Key"] == key and upload["UploadId"] != keep:
                    with contextlib.suppress(Exception):
                        await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])

    async def _copy_ranges(self, source: str, size: int, target: str, upload: str, first_part: int = 1) -> list[dict]:
        """Copy the object ``source`` into parts of the multipart upload ``upload`` of ``target``.

        Equal ranges of at most 5 GiB, so each is at least 5 MiB when ``size`` is.
        """
        s3 = await self._s3()
        count = -(-size // MAX_COPY)
        bounds = [size * i // count for i in range(count + 1)]
        parts = []
        for i in range(count):
            response = await s3.upload_part_copy(
                Bucket=self.bucket,
                Key=target,
                UploadId=upload,
                PartNumber=first_part + i,
                CopySource={"Bucket": self.bucket, "Key": source},
                CopySourceRange=f"bytes={bounds[i]}-{bounds[i + 1] - 1}",
            )
            parts.append({"PartNumber": first_part + i, "ETag": response["CopyPartResult"]["ETag"]})
        return parts

    async def _make_readable(self, upload_id: str, offset: int, record: _Record, tail: bytes) -> _Record:
        """Complete the parts into the object uploads/<id> and go on in a new multipart upload."""
        s3 = await self._s3()
        key = self._upload_key(upload_id)
        fresh = (await s3.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
        await self._complete(upload_id, record, await self._parts(upload_id, record))
        # A crash here leaves the record naming a finished upload: open_upload and
        # read_upload then notice and redo the copy (see _current).
        copied = await self._copy_ranges(key, record.base, key, fresh)
        record = _Record(fresh, len(copied), record.base, record.base)
        await self._put_record(upload_id, offset, record, tail)
        await self._drop_records(upload_id, keep={offset})  # the others name the finished upload
        return record

    async def _current(self, upload_id: str, offset: int) -> tuple[_Record, bytes]:
        """The record at ``offset``, repaired if a read-back was cut off half-way."""
        from botocore.exceptions import ClientError

        record, tail = await self._get_record(upload_id, offset)
        if not record.mpu or record.readable == record.base:
            return record, tail
        s3 = await self._s3()
        try:
            await s3.list_parts(Bucket=self.bucket, Key=self._upload_key(upload_id), UploadId=record.mpu, MaxParts=1)
            return record, tail
        except ClientError as e:
            if _code(e) != "NoSuchUpload":
                raise
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self._upload_key(upload_id))
        except ClientError as e:
            if _missing(e):
                raise KeyError(upload_id) from None
            raise
        if head["ContentLength"] < record.base:
            raise RuntimeError(f"upload {upload_id}: its multipart upload is gone")
        key = self._upload_key(upload_id)
        fresh = (await s3.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
        copied = await self._copy_ranges(key, record.base, key, fresh)
        record = _Record(fresh, len(copied), record.base, record.base)
        await self._put_record(upload_id, offset, record, tail)
        await self._drop_records(upload_id, keep={offset})
        return record, tail

    # -- uploads ---------------------------------------------------------------------
    async def create_upload(self, upload_id: str) -> None:
        await self._put_record(upload_id, 0, _Record("", 0, 0, 0), b"")

    async def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        record, tail = await self._current(upload_id, offset)
        return _S3Writer(self, upload_id, offset, record, tail)

    async def read_upload(self, upload_id: str, length: int) -> AsyncIterator[bytes]:
        record, tail = await self._current(upload_id, length)
        if record.readable < record.base:
            record = await self._make_readable(upload_id, length, record, tail)
        if record.base:
            async for chunk in self._read(self._upload_key(upload_id), 0, record.base):
                yield chunk
        if tail:
            yield tail

    async def commit_upload(self, upload_id: str, digest: str, length: int) -> None:
        target = self._blob_key(digest)
        if await self.blob_size(digest) is not None:
            await self.delete_upload(upload_id)
            return
        s3 = await self._s3()
        record, tail = await self._current(upload_id, length)
        record_key = self._record_key(upload_id, length)
        if record.parts == 0:  # smaller than a part: the record is the blob
            await s3.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": record_key},
                MetadataDirective="REPLACE",
                ContentType="application/octet-stream",
            )
        else:
            parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in await self._parts(upload_id, record)]
            if len(parts) > record.parts:  # parts of aborted writers follow: the blob is a range of them
                await self._complete(upload_id, record, parts)
                await self._copy_prefix_and_tail(upload_id, record, record_key if tail else None, target)
                await self.delete_upload(upload_id)
                return
            if tail:  # the last part may be small: copy the record into it
                response = await s3.upload_part_copy(
                    Bucket=self.bucket,
                    Key=self._upload_key(upload_id),
                    UploadId=record.mpu,
                    PartNumber=record.parts + 1,
                    CopySource={"Bucket": self.bucket, "Key": record_key},
                )
                parts.append({"PartNumber": record.parts + 1, "ETag": response["CopyPartResult"]["ETag"]})
            await self._complete(upload_id, record, parts)
            await self._copy_object(self._upload_key(upload_id), length, target)
        await self.delete_upload(upload_id)

    async def _copy_prefix_and_tail(self, upload_id: str, record: _Record, tail_key: str | None, target: str) -> None:
        """Make ``target`` the first ``base`` bytes of uploads/<id> then the tail, by a multipart copy."""
        s3 = await self._s3()
        upload = (
            await s3.create_multipart_upload(Bucket=self.bucket, Key=target, ContentType="application/octet-stream")
        )["UploadId"]
        try:
            parts = await self._copy_ranges(self._upload_key(upload_id), record.base, target, upload)
            if tail_key is not None:
                response = await s3.upload_part_copy(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload,
                    PartNumber=len(parts) + 1,
                    CopySource={"Bucket": self.bucket, "Key": tail_key},
                )
                parts.append({"PartNumber": len(parts) + 1, "ETag": response["CopyPartResult"]["ETag"]})
            await s3.complete_multipart_upload(
                Bucket=self.bucket, Key=target, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=upload)
            raise

    async def _copy_object(self, source: str, size: int, target: str) -> None:
        s3 = await self._s3()
        if size <= MAX_COPY:
            await s3.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": source},
                MetadataDirective="REPLACE",
                ContentType="application/octet-stream",
            )
            return
        upload = (
            await s3.create_multipart_upload(Bucket=self.bucket, Key=target, ContentType="application/octet-stream")
        )["UploadId"]
        try:
            parts = await self._copy_ranges(source, size, target, upload)
            await s3.complete_multipart_upload(
                Bucket=self.bucket, Key=target, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=upload)
            raise

    async def delete_upload(self, upload_id: str) -> None:
        key = self._upload_key(upload_id)
        await self._abort_multiparts(upload_id)
        records = await self._list_keys(self._record_key(upload_id, 0)[:-1])
        await self._delete_keys([key, *records])

    # -- blobs -----------------------------------------------------------------------
    async def put_blob(self, digest: str, data: bytes) -> None:
        if await self.blob_size(digest) is not None:
            return
        s3 = await self._s3()
        await s3.put_object(
            Bucket=self.bucket, Key=self._blob_key(digest), Body=data, ContentType="application/octet-stream"
        )

    async def blob_size(self, digest: str) -> int | None:
        from botocore.exceptions import ClientError

        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self._blob_key(digest))
        except ClientError as e:
            if _missing(e):
                return None
            raise
        return int(head["ContentLength"])

    async def read_blob(self, digest: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self._read(self._blob_key(digest), offset, length):
            yield chunk

    async def _read(self, key: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        from botocore.exceptions import ClientError

        s3 = await self._s3()
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("negative offset or length")
        if length == 0:
            await self._head(key)
            return
        arguments = {"Bucket": self.bucket, "Key": key}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            arguments["Range"] = f"bytes={offset}-{end}"
        try:
            response = await s3.get_object(**arguments)
        except ClientError as e:
            if _missing(e):
                raise KeyError(key) from None
            if _code(e) == "InvalidRange":  # starts at or past the end
                await self._head(key)
                return
            raise
        async with response["Body"] as body:
            while chunk := await body.read(READ_CHUNK):
                yield chunk

    async def _head(self, key: str) -> dict:
        from botocore.exceptions import ClientError

        s3 = await self._s3()
        try:
            return await s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if _missing(e):
                raise KeyError(key) from None
            raise

    async def delete_blob(self, digest: str) -> None:
        s3 = await self._s3()
        await s3.delete_object(Bucket=self.bucket, Key=self._blob_key(digest))

    async def blob_url(self, digest: str, *, expires_in: int) -> str | None:
        s3 = await self._s3()
        return await s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._blob_key(digest)}, ExpiresIn=int(expires_in)
        )
