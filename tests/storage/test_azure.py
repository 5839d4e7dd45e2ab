"""What only the Azure Blob Storage driver has: block lists, credentials, SAS URLs, a restarted service.

The behaviour every driver shares is tested in test_drivers.py; these run against Azurite too.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import aiohttp
import pytest
from azure.storage.blob.aio import BlobServiceClient

from dockyard.storage import open_store
from dockyard.storage.azure import BLOCK_SIZE, CONNECTION_STRING_ENV, AzureBlobStore, parse_connection_string


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def collect(iterator) -> bytes:
    return b"".join([chunk async for chunk in iterator])


@pytest.fixture
def container(azurite) -> str:
    return azurite.new_container()


@pytest.fixture
async def opened():
    stores = []
    yield stores
    for store in stores:
        await store.close()


@pytest.fixture
def make_store(azurite, container, opened):
    def make() -> AzureBlobStore:
        store = open_store(
            f"azure://{container}?endpoint={quote(azurite.endpoint, safe='')}",
            {"azure_account_name": azurite.account_name, "azure_account_key": azurite.account_key},
        )
        opened.append(store)
        return store

    return make


@pytest.fixture
async def sdk(azurite, container):
    """The SDK's own client of the test's container, to look at what the driver stored."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    yield service.get_container_client(container)
    await service.close()


async def test_chunks_become_committed_blocks_of_at_most_one_block_size(make_store, sdk):
    store = make_store()
    await store.create_upload("b1")
    writer = await store.open_upload("b1", 0)
    for _ in range(10):
        await writer.write(b"z" * (1 << 20))
    uncommitted = (await sdk.get_blob_client("uploads/b1").get_block_list("all"))[1]
    assert [block.size for block in uncommitted] == [BLOCK_SIZE, BLOCK_SIZE]  # staged as they filled
    await writer.close()
    committed, uncommitted = await sdk.get_blob_client("uploads/b1").get_block_list("all")
    assert [block.size for block in committed] == [BLOCK_SIZE, BLOCK_SIZE, (10 << 20) - 2 * BLOCK_SIZE]
    assert uncommitted == []
    assert len({len(block.id) for block in committed}) == 1

    digest = digest_of(b"z" * (10 << 20))
    await store.commit_upload("b1", digest, 10 << 20)
    names = [blob.name async for blob in sdk.list_blobs()]
    assert names == [f"blobs/sha256/{digest.partition(':')[2]}"]  # the upload blob is gone


async def test_an_offset_inside_a_committed_write_is_refused(make_store):
    store = make_store()
    await store.create_upload("b2")
    writer = await store.open_upload("b2", 0)
    await writer.write(b"0123456789")
    await writer.close()
    with pytest.raises(ValueError, match="offset 4 is not the end of a committed write"):
        await store.open_upload("b2", 4)
    with pytest.raises(ValueError, match="offset 11"):
        await store.open_upload("b2", 11)


async def test_a_stale_writer_cannot_overwrite_a_newer_commit(make_store):
    first, second = make_store(), make_store()
    await first.create_upload("b3")
    stale = await first.open_upload("b3", 0)
    fresh = await second.open_upload("b3", 0)
    await fresh.write(b"fresh")
    await fresh.close()
    await stale.write(b"stale")
    with pytest.raises(RuntimeError, match="changed by another writer"):
        await stale.close()
    assert await collect(first.read_upload("b3", 5)) == b"fresh"


async def test_committing_a_short_prefix_of_the_upload(make_store):
    store = make_store()
    await store.create_upload("b4")
    writer = await store.open_upload("b4", 0)
    await writer.write(b"keep")
    await writer.close()
    writer = await store.open_upload("b4", 4)
    await writer.write(b" and more")
    await writer.close()
    await store.commit_upload("b4", digest_of(b"keep"), 4)
    assert await collect(store.read_blob(digest_of(b"keep"))) == b"keep"


async def test_credentials_from_the_connection_string(azurite, container, monkeypatch, opened):
    monkeypatch.setenv(CONNECTION_STRING_ENV, azurite.connection_string)
    store = open_store(f"azure://{container}")
    opened.append(store)
    digest = digest_of(b"by connection string")
    await store.put_blob(digest, b"by connection string")
    assert await store.blob_size(digest) == len(b"by connection string")
    url = await store.blob_url(digest, expires_in=60)
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert await response.read() == b"by connection string"


def test_missing_credentials_and_connection_string_fields(monkeypatch):
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    with pytest.raises(ValueError, match="needs credentials"):
        open_store("azure://c")
    fields = parse_connection_string("AccountName=a;AccountKey=k+/==;EndpointSuffix=core.windows.net")
    assert fields == {"accountname": "a", "accountkey": "k+/==", "endpointsuffix": "core.windows.net"}


async def test_default_endpoint_is_the_accounts_blob_service():
    store = open_store("azure://c", {"azure_account_name": "acct", "azure_account_key": "a2V5"})
    try:
        assert store.account_url == "https://acct.blob.core.windows.net"
        url = await store.blob_url(digest_of(b"x"), expires_in=60)
        assert url.startswith(f"https://acct.blob.core.windows.net/c/blobs/sha256/{digest_of(b'x')[7:]}?")
        assert "sp=r&" in url
    finally:
        await store.close()


async def test_the_sas_url_only_reads(make_store):
    store = make_store()
    digest = digest_of(b"read only")
    await store.put_blob(digest, b"read only")
    url = await store.blob_url(digest, expires_in=60)
    async with aiohttp.ClientSession() as session:
        async with session.delete(url) as response:
            assert response.status == 403
    assert await store.blob_size(digest) == len(b"read only")


async def test_an_upload_survives_a_restart_of_the_service(azurite, make_store):
    store = make_store()
    await store.create_upload("b5")
    writer = await store.open_upload("b5", 0)
    await writer.write(b"before the restart, ")
    await writer.close()
    azurite.stop()
    azurite.start()
    # the same instance goes on (its pooled connections died with the server) ...
    assert await collect(store.read_upload("b5", 20)) == b"before the restart, "
    # ... and so does another one
    other = make_store()
    writer = await other.open_upload("b5", 20)
    await writer.write(b"and after")
    await writer.close()
    data = b"before the restart, and after"
    await other.commit_upload("b5", digest_of(data), len(data))
    assert await collect(store.read_blob(digest_of(data))) == data


async def test_a_registry_on_azure_storage(azurite, container, tmp_path, aiohttp_client):
    """The whole server on the driver: a chunked push, then a pull and a ranged pull."""
    from dockyard.config import load
    from dockyard.http.app import create_app
    from dockyard.server import open_services
    from tests.conftest import OWNER_PASSWORD, DockyardTestServer, basic

    settings = load(
        environ={},
        data_dir=tmp_path / "data",
        owner_password=OWNER_PASSWORD,
        storage_url=f"azure://{container}?endpoint={quote(azurite.endpoint, safe='')}",
        azure_account_name=azurite.account_name,
        azure_account_key=azurite.account_key,
    )
    services, _ = await open_services(settings)
    try:
        client = await aiohttp_client(DockyardTestServer(create_app(services)), headers=basic())
        data = bytes(range(256)) * 40_000  # about 10 MiB
        response = await client.post("/v2/app/blobs/uploads/")
        assert response.status == 202
        location = response.headers["Location"]
        half = len(data) // 2
        for start, end in ((0, half), (half, len(data))):
            response = await client.patch(
                location,
                data=data[start:end],
                headers={"Content-Range": f"{start}-{end - 1}", "Content-Type": "application/octet-stream"},
            )
            assert response.status == 202, await response.text()
            location = response.headers["Location"]
        digest = digest_of(data)
        response = await client.put(location, params={"digest": digest})
        assert response.status == 201, await response.text()
        async with aiohttp.ClientSession() as plain:  # what a client does with a redirect: no credentials
            for headers, status, body in (({}, 200, data), ({"Range": "bytes=100-199"}, 206, data[100:200])):
                response = await client.get(f"/v2/app/blobs/{digest}", headers=headers, allow_redirects=False)
                if response.status == 307:  # to a SAS URL of the blob (blob_delivery: redirect)
                    assert response.headers["Location"].startswith(f"{azurite.endpoint}/{container}/blobs/")
                    async with plain.get(response.headers["Location"], headers=headers) as response:
                        assert response.status == status and await response.read() == body
                else:
                    assert response.status == status and await response.read() == body
    finally:
        await services.close()
