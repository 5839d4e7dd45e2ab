"""Login state of the client CLI: one JSON file in the user's config dir, mode 0600.

The folder is ``$DOCKYARD_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/dockyard``, else
``~/.config/dockyard`` (mode 0700). ``profile.json`` holds the endpoint, the CA bundle, the
signed-in principal with the secret needed to get fresh tokens (as az keeps a service
principal's secret), the subscriptions, and tokens cached until they expire. It is written
atomically and never readable by others, whatever the umask.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.cli.console import CLIError

FILE_NAME = "profile.json"
# a token is used only while it has at least this many seconds left
EXPIRY_MARGIN = 120


def config_dir() -> Path:
    explicit = os.environ.get("DOCKYARD_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "dockyard"


def profile_path() -> Path:
    return config_dir() / FILE_NAME


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it (only to know when to renew)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


@dataclass
class Profile:
    endpoint: str = ""
    ca_bundle: str | None = None
    tenant_id: str = ""
    user_name: str = ""
    user_type: str = "user"  # "user" or "servicePrincipal", az's spelling
    secret: str = ""
    registry_suffix: str | None = None  # e.g. ".dockyard.localhost", from /metadata/endpoints
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- persistence -------------------------------------------------------------

    @classmethod
    def load(cls) -> "Profile | None":
        path = profile_path()
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot read {path}: {exc}. Run 'dockyard login' again.") from None
        if not isinstance(document, dict) or not document.get("endpoint"):
            return None
        return cls(
            endpoint=document["endpoint"],
            ca_bundle=document.get("caBundle"),
            tenant_id=document.get("tenantId", ""),
            user_name=document.get("user", {}).get("name", ""),
            user_type=document.get("user", {}).get("type", "user"),
            secret=document.get("secret", ""),
            registry_suffix=document.get("registrySuffix"),
            subscriptions=list(document.get("subscriptions", [])),
            tokens=dict(document.get("tokens", {})),
        )

    @classmethod
    def require(cls) -> "Profile":
        profile = cls.load()
        if profile is None or not profile.user_name:
            raise CLIError("Please run 'dockyard login' to setup account.")
        return profile

    def document(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "caBundle": self.ca_bundle,
            "tenantId": self.tenant_id,
            "user": {"name": self.user_name, "type": self.user_type},
            "secret": self.secret,
            "registrySuffix": self.registry_suffix,
            "subscriptions": self.subscriptions,
            "tokens": self.tokens,
        }

    def save(self) -> None:
        write_private(profile_path(), json.dumps(self.document(), indent=2, sort_keys=True) + "\n")

    # -- subscriptions -----------------------------------------------------------

    def subscription(self, reference: str | None = None) -> dict[str, Any]:
        """The default subscription, or the one named by id or display name."""
        if not self.subscriptions:
            raise CLIError("No subscriptions found for this account. Run 'dockyard login' again.")
        if reference:
            wanted = reference.strip().lower()
            for sub in self.subscriptions:
                if sub["id"].lower() == wanted or sub.get("name", "").lower() == wanted:
                    return sub
            raise CLIError(f"Subscription '{reference}' not found. Check the spelling and casing and try again.")
        for sub in self.subscriptions:
            if sub.get("isDefault"):
                return sub
        return self.subscriptions[0]

    def set_default(self, reference: str) -> dict[str, Any]:
        chosen = self.subscription(reference)
        for sub in self.subscriptions:
            sub["isDefault"] = sub is chosen
        return chosen

    # -- tokens ------------------------------------------------------------------

    def cached_token(self, key: str) -> str | None:
        entry = self.tokens.get(key)
        if entry and float(entry.get("expiresOn", 0)) - EXPIRY_MARGIN > time.time():
            return entry.get("accessToken")
        return None

    def cache_token(self, key: str, token: str, expires_on: float) -> None:
        now = time.time()
        self.tokens = {k: v for k, v in self.tokens.items() if float(v.get("expiresOn", 0)) > now}
        self.tokens[key] = {"accessToken": token, "expiresOn": int(expires_on)}

    def forget_token(self, key: str) -> None:
        self.tokens.pop(key, None)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically; the file is 0600 (and its folder 0700) from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove() -> bool:
    try:
        profile_path().unlink()
        return True
    except FileNotFoundError:
        return False
