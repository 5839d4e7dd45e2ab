"""Secrets are stored only as argon2id hashes."""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Each argon2 computation takes 64 MiB for its moment: two at a time bounds the memory a burst
# of sign-ins can take (they queue here, not in the default pool that file I/O needs).
# Made on first use in each process: a pool inherited through fork (serve --workers) has
# no threads behind it.
_POOL: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool)


async def in_pool(function, *args):
    """Run an argon2 computation (or a decoy of one) in the bounded pool."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")
    return await asyncio.get_running_loop().run_in_executor(_POOL, function, *args)


async def hash_secret_async(secret: str) -> str:
    return await in_pool(hash_secret, secret)


async def verify_secret_async(hashed: str, secret: str) -> bool:
    return await in_pool(verify_secret, hashed, secret)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(hashed: str, secret: str) -> bool:
    try:
        return _hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


def generate_secret() -> str:
    return secrets.token_urlsafe(32)
