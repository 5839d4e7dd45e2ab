"""Settings: defaults, then a YAML file, then ``DOCKYARD_*`` environment variables, then flags."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Settings:
    data_dir: Path = Path("./dockyard-data")
    listen: str = "127.0.0.1:5000"
    domain: str = "localhost"
    default_registry: str = "dockyard"
    database_url: str = ""  # default: sqlite:///<data_dir>/metadata.db
    storage_url: str = ""  # default: file://<data_dir>/blobs
    owner_password: str = ""
    access_token_seconds: int = 4500
    refresh_token_seconds: int = 10800
    max_manifest_bytes: int = 4 << 20
    max_page_size: int = 1000
    upload_expiry_hours: int = 24
    log_level: str = "info"
    tls_cert: str = ""  # serve https with this certificate (PEM) ...
    tls_key: str = ""  # ... and its key; both or neither
    tenant_id: str = ""  # default: a GUID made on first start
    subscription_id: str = ""  # default: a GUID made on first start
    oidc_issuers: str = ""  # external OpenID Connect issuers whose tokens are accepted, comma-separated
    login_throttle: int = 10  # failed sign-ins per client and name per minute before 429
    # object storage credentials (the SDKs' own environment variables work too:
    # AZURE_STORAGE_CONNECTION_STRING, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
    azure_account_name: str = ""
    azure_account_key: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    # load balancers whose X-Forwarded-Proto/-Host/-For are believed (comma-separated IPs or networks)
    trusted_proxies: str = ""
    blob_delivery: str = "redirect"  # redirect: 307 to a short-lived store URL where the store has one; proxy: stream
    background_work: str = "inline"  # inline: `serve` runs the outbox consumers; external: only `dockyard worker` does
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> "Settings":
        for name, allowed in (("blob_delivery", ("redirect", "proxy")), ("background_work", ("inline", "external"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        for item in filter(None, (part.strip() for part in self.trusted_proxies.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {item!r} is not an IP address or network") from None
        data_dir = Path(self.data_dir).expanduser().resolve()
        return dataclasses.replace(
            self,
            data_dir=data_dir,
            database_url=self.database_url or f"sqlite:///{data_dir / 'metadata.db'}",
            storage_url=self.storage_url or f"file://{data_dir / 'blobs'}",
        )

    @property
    def storage_options(self) -> dict[str, str]:
        names = ("azure_account_name", "azure_account_key", "s3_access_key_id", "s3_secret_access_key")
        return {name: getattr(self, name) for name in names if getattr(self, name)}

    @property
    def oidc_issuer_list(self) -> list[str]:
        return [url.strip() for url in self.oidc_issuers.split(",") if url.strip()]

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


ENV_PREFIX = "DOCKYARD_"


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        return int(raw)
    if kind == "Path":
        return Path(str(raw))
    return str(raw)


def load(config_file: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None, **flags) -> Settings:
    """Build settings from every source; unknown keys in the file are an error, not a silent no-op."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    names = {f.name for f in fields(Settings)} - {"extra"}
    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        document = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(document, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        for key, raw in document.items():
            name = str(key).replace("-", "_")
            if name not in names:
                raise ValueError(f"{config_file}: unknown setting {key!r}")
            values[name] = _coerce(name, raw)
    for name in names:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw)
    for name, raw in flags.items():
        if raw is not None:
            values[name] = _coerce(name, raw)
    return Settings(**values).resolved()
