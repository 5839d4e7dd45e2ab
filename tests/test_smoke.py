async def test_base_endpoint_answers_signed_in_owner(client):
    response = await client.get("/v2/")
    assert response.status == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_pushed_image_can_be_pulled(client, push):
    digest, body = await push.image("library/busybox", "1.36")
    response = await client.get("/v2/library/busybox/manifests/1.36")
    assert response.status == 200
    assert await response.read() == body
    assert response.headers["Docker-Content-Digest"] == digest
