"""Secrets that must be shown again (the admin user's passwords) are sealed with the installation's
secrets key, never stored in the clear. Secrets that are only checked are hashed instead."""

from __future__ import annotations


from cryptography.fernet import Fernet, InvalidToken


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str | None) -> str | None:
        if not sealed:
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
