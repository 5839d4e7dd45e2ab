"""TLS for Dockyard: a local certificate authority, server certificates it signs, and the
server's SSL context.

A CA of its own (``ca.pem`` + ``ca-key.pem``) is what clients are told to trust, once;
server certificates (``server.pem`` + ``server-key.pem``) can then be issued again, for
new names or when they expire, without touching the clients. Keys are ECDSA P-256 and are
written with mode 0600.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dockyard.core.names import is_registry_name

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"

CA_DAYS = 3650
SERVER_DAYS = 365
# macOS (and so Safari and Go/curl on macOS) refuses TLS server certificates valid for longer,
# even from a CA the user trusts.
MAX_TRUSTED_SERVER_DAYS = 825
# Names every server certificate carries, so the registry is reachable on this machine.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")

# Tolerate clocks a little behind ours.
_BACKDATE = timedelta(minutes=5)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically; the file has ``mode`` from its first byte on, whatever was there before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _check_days(days: int) -> int:
    if int(days) < 1:
        raise ValueError(f"validity must be at least 1 day, not {days}")
    return int(days)


def check_dns_name(name: str, *, what: str = "name") -> str:
    """A lowercase DNS name (``*.`` allowed only in front), or ValueError."""
    name = name.strip().lower().rstrip(".")
    labels = name.split(".")
    if labels and labels[0] == "*":
        labels = labels[1:]
    if not name or not labels or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"invalid {what} {name!r}: expected a DNS name such as dockyard.localhost")
    return name


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def server_names(domain: str, registries: Iterable[str] = (), extra: Iterable[str] = ()) -> list[str]:
    """The subject alternative names of a server certificate, in order, without repeats.

    ``*.DOMAIN`` and ``DOMAIN``, the local names (``localhost``, ``127.0.0.1``, ``::1``),
    ``NAME.DOMAIN`` for each registry, then ``extra`` names or IP addresses.
    """
    if _ip(domain) is not None:
        raise ValueError(f"the domain must be a DNS name, not the address {domain!r}; pass addresses as extra names")
    domain = check_dns_name(domain, what="domain")
    if domain.startswith("*."):
        raise ValueError(f"give the domain without '*.': {domain[2:]!r}")
    names = [f"*.{domain}", domain, *LOCAL_NAMES]
    for registry in registries:
        if not is_registry_name(registry):
            raise ValueError(f"invalid registry name {registry!r}: 5 to 50 letters and digits")
        names.append(f"{registry.lower()}.{domain}")
    for name in extra:
        address = _ip(name)
        names.append(str(address) if address is not None else check_dns_name(name))
    return list(dict.fromkeys(names))


def wildcard_matches_nothing(domain: str) -> bool:
    """True if ``*.DOMAIN`` matches no host: clients want two labels after the star."""
    return "." not in domain.strip().strip(".")


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        address = _ip(name)
        out.append(x509.IPAddress(address) if address is not None else x509.DNSName(name))
    return out


def create_ca(directory: str | os.PathLike[str], *, days: int = CA_DAYS, common_name: str = "Dockyard local CA") -> CertificateAuthority:
    """Make a new CA in DIR/ca.pem and DIR/ca-key.pem (0600), replacing any there."""
    days = _check_days(days)
    directory = Path(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / CA_KEY, directory / CA_CERT
    _write(key_file, _key_pem(key), 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return CertificateAuthority(cert, key, cert_file, key_file)


def load_ca(directory: str | os.PathLike[str]) -> CertificateAuthority:
    """The CA in DIR, checked to be a usable CA whose key matches its certificate."""
    directory = Path(directory)
    cert_file, key_file = directory / CA_CERT, directory / CA_KEY
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise ValueError(f"{key_file} is not the key of {cert_file}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ValueError(f"{cert_file} is not a CA certificate")
    if cert.not_valid_after_utc <= _now():
        raise ValueError(f"the CA {cert_file} expired on {cert.not_valid_after_utc:%Y-%m-%d}; move it away to make a new one")
    return CertificateAuthority(cert, key, cert_file, key_file)


def load_or_create_ca(directory: str | os.PathLike[str], *, days: int = CA_DAYS) -> tuple[CertificateAuthority, bool]:
    """The CA in DIR if there is one, else a new one; and whether it was created."""
    directory = Path(directory)
    have = [p.exists() for p in (directory / CA_CERT, directory / CA_KEY)]
    if all(have):
        return load_ca(directory), False
    if any(have):
        present, missing = (CA_CERT, CA_KEY) if have[0] else (CA_KEY, CA_CERT)
        raise ValueError(f"{directory / present} exists but {directory / missing} does not; restore it or remove both")
    return create_ca(directory, days=days), True


def issue_server_cert(
    ca: CertificateAuthority,
    directory: str | os.PathLike[str],
    domain: str,
    registries: Iterable[str] = (),
    extra_names: Iterable[str] = (),
    *,
    days: int = SERVER_DAYS,
) -> x509.Certificate:
    """Sign a server certificate for :func:`server_names` with a new key, written to
    DIR/server.pem and DIR/server-key.pem (0600). It never outlives the CA."""
    days = _check_days(days)
    names = server_names(domain, registries, extra_names)
    directory = Path(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + timedelta(days=days), ca.cert.not_valid_after_utc)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[1]),
        ]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    _write(directory / SERVER_KEY, _key_pem(key), 0o600)
    _write(directory / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a certificate is valid for."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(a) for a in san.get_values_for_type(x509.IPAddress))]


def server_ssl_context(cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """The server side of TLS 1.2+ with this certificate (chain) and key; ValueError if unusable."""
    for what, path in (("certificate", cert_file), ("key", key_file)):
        if not Path(path).is_file():
            raise ValueError(f"TLS {what} file {str(path)!r} does not exist")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(os.fspath(cert_file), os.fspath(key_file))
    except ssl.SSLError as exc:
        raise ValueError(f"cannot use TLS certificate {str(cert_file)!r} with key {str(key_file)!r}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"cannot read TLS certificate or key: {exc}") from None
    return context
