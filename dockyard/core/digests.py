"""Content digests (OCI image-spec descriptor.md): parsing and hashing."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dockyard.core.errors import DigestInvalid

# algorithm -> length of the hex-encoded value
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
DEFAULT_ALGORITHM = "sha256"

_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_ENCODED = {algorithm: re.compile(f"[0-9a-f]{{{length}}}") for algorithm, length in ALGORITHMS.items()}


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, value: str) -> "Digest":
        if not value or len(value) > 256 or not _GRAMMAR.match(value):
            raise DigestInvalid(f"invalid digest {value[:140]!r}")
        algorithm, _, encoded = value.partition(":")
        if algorithm not in ALGORITHMS:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}; use sha256 or sha512")
        if not _ENCODED[algorithm].fullmatch(encoded):
            raise DigestInvalid(f"invalid {algorithm} digest {value[:140]!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = DEFAULT_ALGORITHM) -> "Digest":
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def is_digest(reference: str) -> bool:
    """A manifest reference is a digest when it carries an algorithm prefix."""
    return ":" in reference


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise DigestInvalid(f"unsupported digest algorithm {algorithm[:40]!r}; use sha256 or sha512")
    return algorithm


def new_hasher(algorithm: str):
    return hashlib.new(check_algorithm(algorithm))
