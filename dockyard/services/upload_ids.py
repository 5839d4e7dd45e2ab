"""Upload ids that carry their own state, so that starting an upload writes nothing.

An id is 60 hex digits: 9 random bytes, the digest algorithm, the second it was issued, and
an HMAC-SHA256 (truncated to 16 bytes) of those under the installation's upload-id key
together with the registry and repository it was issued for. Every node shares the key (it
lives in the database, like the token-signing keys), so any node can check an id, and an id
is good only in the repository of the registry where it was issued. An id says nothing of
what became of the upload: that is in the ``uploads`` table, whose rows (and tombstones of
used-up and cancelled ids) outlive the ids' validity.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

UPLOAD_ID_KEY = "upload-id-key"  # the installation's key (services/installation.py) of upload ids

LENGTH = 60  # hex digits; the uploads table's ids hold 64
_RANDOM = 9
_MAC = 16
_ALGORITHMS = ("sha256", "sha512")  # by their byte in an id


@dataclass(frozen=True, slots=True)
class Issued:
    """What a valid id says: when it was issued, for which digest algorithm."""

    at: datetime
    algorithm: str


def new_key() -> str:
    return secrets.token_hex(32)


class UploadIds:
    def __init__(self, key: str) -> None:
        self._hmac = hmac.new(bytes.fromhex(key), digestmod=hashlib.sha256)  # copied per id: no lookups

    def issue(self, registry_id: int, repository: str, algorithm: str, now: datetime) -> tuple[str, Issued]:
        seconds = int(now.timestamp())
        body = secrets.token_bytes(_RANDOM) + bytes((_ALGORITHMS.index(algorithm),)) + seconds.to_bytes(4, "big")
        upload_id = (body + self._mac(body, registry_id, repository)).hex()
        return upload_id, Issued(datetime.fromtimestamp(seconds, timezone.utc), algorithm)

    def open(self, upload_id: str, registry_id: int, repository: str) -> Issued | None:
        """What ``upload_id`` says if this installation issued it for this repository, else None."""
        if len(upload_id) != LENGTH:
            return None
        try:
            raw = bytes.fromhex(upload_id)
        except ValueError:
            return None
        if raw.hex() != upload_id:  # one spelling per id (no capitals, no spaces): a row is found by it
            return None
        body, mac = raw[:-_MAC], raw[-_MAC:]
        if not hmac.compare_digest(mac, self._mac(body, registry_id, repository)):
            return None
        algorithm = body[_RANDOM]
        if algorithm >= len(_ALGORITHMS):
            return None
        seconds = int.from_bytes(body[_RANDOM + 1 :], "big")
        return Issued(datetime.fromtimestamp(seconds, timezone.utc), _ALGORITHMS[algorithm])

    def _mac(self, body: bytes, registry_id: int, repository: str) -> bytes:
        mac = self._hmac.copy()
        mac.update(b"dockyard upload\0%d\0%s\0%s" % (registry_id, repository.encode(), body))
        return mac.digest()[:_MAC]
