"""A chunked blob upload survives server restarts between PATCH requests.

Raw HTTP (requests) in the OCI distribution-spec chunked flow:
POST -> PATCH ... -> GET status -> PATCH ... -> PUT ?digest=.
"""

import hashlib
import os
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests

pytestmark = pytest.mark.e2e

REPO = "e2e/resume"
CHUNK = 1024 * 1024 + 7


class Client:
    """Bearer-token HTTP client; on 401 it gets a fresh token once, like real clients."""

    def __init__(self, server):
        self.server = server
        self.token = server.token(f"repository:{REPO}:pull,push")

    def call(self, method, url, **kw):
        url = urljoin(self.server.url + "/", url)  # Location may be relative
        headers = kw.pop("headers", {})
        for attempt in range(2):
            r = requests.request(method, url, headers={
                "Authorization": f"Bearer {self.token}", **headers,
            }, timeout=60, allow_redirects=False, **kw)
            if r.status_code != 401 or attempt:
                return r
            self.token = self.server.token(f"repository:{REPO}:pull,push")
        return r

    def start(self):
        r = self.call("POST", f"/v2/{REPO}/blobs/uploads/")
        assert r.status_code == 202, (r.status_code, dict(r.headers), r.text)
        return r.headers["Location"]

    def patch(self, location, chunk, start):
        return self.call("PATCH", location, data=chunk, headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(chunk)),
            "Content-Range": f"{start}-{start + len(chunk) - 1}",
        })

    def status(self, location):
        r = self.call("GET", location)
        assert r.status_code == 204, (r.status_code, dict(r.headers), r.text)
        return r

    def finish(self, location, digest, last=b""):
        parts = urlsplit(location)
        query = urlencode(parse_qsl(parts.query) + [("digest", digest)])
        return self.call("PUT", urlunsplit(parts._replace(query=query)), data=last, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(len(last)),
        })

    def check_blob(self, digest, data):
        r = self.call("GET", f"/v2/{REPO}/blobs/{digest}")
        assert r.status_code == 200, (r.status_code, dict(r.headers))
        assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(data).hexdigest()
        assert r.content == data


def accepted(r, end):
    """A PATCH answer: 202, with the whole received range so far."""
    assert r.status_code == 202, (r.request.method, r.request.url, r.status_code,
                                  dict(r.headers), r.text)
    assert r.headers["Range"] == f"0-{end}", dict(r.headers)
    return r.headers["Location"]


def test_upload_resumes_across_restarts(dockyard_server):
    data = os.urandom(3 * CHUNK + 12345)
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    c = Client(dockyard_server)

    location = c.start()
    offset = 0
    for chunk in chunks[:-1]:
        location = accepted(c.patch(location, chunk, offset), offset + len(chunk) - 1)
        offset += len(chunk)

        dockyard_server.restart()

        st = c.status(location)
        assert st.headers["Range"] == f"0-{offset - 1}", dict(st.headers)
        location = st.headers["Location"]

    r = c.finish(location, digest, last=chunks[-1])
    assert r.status_code == 201, (r.status_code, dict(r.headers), r.text)
    assert r.headers["Docker-Content-Digest"] == digest
    c.check_blob(digest, data)


def test_out_of_order_chunk_after_restart_is_rejected(dockyard_server):
    data = os.urandom(2 * CHUNK)
    first, second = data[:CHUNK], data[CHUNK:]
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    c = Client(dockyard_server)

    location = accepted(c.patch(c.start(), first, 0), CHUNK - 1)
    dockyard_server.restart()

    gap = c.patch(location, second, CHUNK + 100)
    assert gap.status_code == 416, (gap.status_code, dict(gap.headers), gap.text)

    st = c.status(location)
    assert st.headers["Range"] == f"0-{CHUNK - 1}", dict(st.headers)
    location = accepted(c.patch(st.headers["Location"], second, CHUNK), 2 * CHUNK - 1)
    r = c.finish(location, digest)
    assert r.status_code == 201, (r.status_code, dict(r.headers), r.text)
    c.check_blob(digest, data)
