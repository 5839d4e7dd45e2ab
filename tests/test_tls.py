"""dockyard/tls.py and `dockyard cert create`: the local CA, server certificates, the server's context."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from dockyard import tls
from dockyard.cli import app
from dockyard.config import load
from dockyard.server import ssl_context


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [str(a) for a in san.get_values_for_type(x509.IPAddress)]


@pytest.fixture
def issued(tmp_path):
    ca, created = tls.load_or_create_ca(tmp_path)
    assert created
    tls.issue_server_cert(ca, tmp_path, "Dockyard.Localhost.", ["MyReg1", "other22"], ["192.0.2.7", "Build-Host"])
    return tmp_path


def test_server_certificate_names(issued):
    dns, ips = _sans(_cert(issued / "server.pem"))
    assert dns == ["*.dockyard.localhost", "dockyard.localhost", "localhost", "myreg1.dockyard.localhost",
                   "other22.dockyard.localhost", "build-host"]
    assert ips == ["127.0.0.1", "::1", "192.0.2.7"]


def test_server_certificate_is_a_leaf_for_servers_signed_by_the_ca(issued):
    ca, cert = _cert(issued / "ca.pem"), _cert(issued / "server.pem")
    cert.verify_directly_issued_by(ca)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ca_constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_constraints.critical and ca_constraints.value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_keys_are_private_and_certificates_readable(issued):
    assert _mode(issued / "ca-key.pem") == 0o600
    assert _mode(issued / "server-key.pem") == 0o600
    assert _mode(issued / "ca.pem") == 0o644
    assert _mode(issued / "server.pem") == 0o644
    assert sorted(p.name for p in issued.iterdir()) == ["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]


def test_a_key_file_made_readable_is_private_again_after_a_new_issue(issued):
    (issued / "server-key.pem").chmod(0o644)
    ca, _ = tls.load_or_create_ca(issued)
    tls.issue_server_cert(ca, issued, "dockyard.localhost")
    assert _mode(issued / "server-key.pem") == 0o600


def test_the_ca_is_reused_and_server_certificates_renewed(issued):
    ca_bytes, ca_key_bytes = (issued / "ca.pem").read_bytes(), (issued / "ca-key.pem").read_bytes()
    old_server, old_key = (issued / "server.pem").read_bytes(), (issued / "server-key.pem").read_bytes()
    ca, created = tls.load_or_create_ca(issued)
    assert not created
    tls.issue_server_cert(ca, issued, "dockyard.localhost", ["newreg1"])
    assert (issued / "ca.pem").read_bytes() == ca_bytes
    assert (issued / "ca-key.pem").read_bytes() == ca_key_bytes
    assert (issued / "server.pem").read_bytes() != old_server
    assert (issued / "server-key.pem").read_bytes() != old_key
    cert = _cert(issued / "server.pem")
    cert.verify_directly_issued_by(_cert(issued / "ca.pem"))
    assert "newreg1.dockyard.localhost" in _sans(cert)[0]


def test_half_a_ca_or_a_foreign_key_is_refused(issued, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    tls.create_ca(other)
    (issued / "ca-key.pem").write_bytes((other / "ca-key.pem").read_bytes())
    with pytest.raises(ValueError, match="is not the key of"):
        tls.load_or_create_ca(issued)
    (issued / "ca-key.pem").unlink()
    with pytest.raises(ValueError, match="ca-key.pem does not"):
        tls.load_or_create_ca(issued)


@pytest.mark.parametrize("days", [1, 30, 365, 800])
def test_validity_in_days(tmp_path, days):
    ca, _ = tls.load_or_create_ca(tmp_path)
    before = datetime.now(timezone.utc)
    cert = tls.issue_server_cert(ca, tmp_path, "dockyard.localhost", days=days)
    assert cert == _cert(tmp_path / "server.pem")
    assert before + timedelta(days=days) - timedelta(seconds=5) <= cert.not_valid_after_utc
    assert cert.not_valid_after_utc <= datetime.now(timezone.utc) + timedelta(days=days)
    assert cert.not_valid_before_utc <= before - timedelta(minutes=4)  # some clock skew tolerated


def test_the_ca_lasts_ten_years_and_no_server_certificate_outlives_it(tmp_path):
    ca = tls.create_ca(tmp_path, days=10)
    assert tls.create_ca(tmp_path / "x").cert.not_valid_after_utc > datetime.now(timezone.utc) + timedelta(days=3649)
    cert = tls.issue_server_cert(ca, tmp_path, "dockyard.localhost", days=365)
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc


@pytest.mark.parametrize(
    ("domain", "registries", "extra", "message"),
    [
        ("bad domain", [], [], "invalid domain"),
        ("*.dockyard.localhost", [], [], "without"),
        ("127.0.0.1", [], [], "not the address"),
        ("dockyard.localhost", ["ab"], [], "invalid registry name"),
        ("dockyard.localhost", ["has-dash"], [], "invalid registry name"),
        ("dockyard.localhost", [], ["no_underscores"], "invalid name"),
    ],
)
def test_bad_names_are_refused(tmp_path, domain, registries, extra, message):
    ca, _ = tls.load_or_create_ca(tmp_path)
    with pytest.raises(ValueError, match=message):
        tls.issue_server_cert(ca, tmp_path, domain, registries, extra)
    assert not (tmp_path / "server.pem").exists()


def test_days_must_be_positive(tmp_path):
    ca, _ = tls.load_or_create_ca(tmp_path)
    with pytest.raises(ValueError, match="at least 1 day"):
        tls.issue_server_cert(ca, tmp_path, "dockyard.localhost", days=0)


def test_wildcard_needs_two_labels():
    assert tls.wildcard_matches_nothing("localhost")
    assert not tls.wildcard_matches_nothing("dockyard.localhost")


# -------------------------------------------------------------- the server's context, handshakes


async def _handshake(issued: Path, server_name: str, *, strict: bool = True) -> x509.Certificate:
    """Serve one TLS connection with server_ssl_context; connect verifying `server_name` against the CA."""
    server_ctx = tls.server_ssl_context(issued / "server.pem", issued / "server-key.pem")

    async def answer(reader, writer):
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(issued / "ca.pem"))
    if strict:  # Python 3.13's default; it wants e.g. the authority key identifier
        client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=server_name)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert await reader.read() == b"ok"
        writer.close()
        return x509.load_der_x509_certificate(der)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "name",
    ["127.0.0.1", "::1", "localhost", "dockyard.localhost", "myreg1.dockyard.localhost",
     "anything.dockyard.localhost", "192.0.2.7", "build-host"],
)
async def test_clients_trusting_the_ca_accept_every_name(issued, name):
    cert = await _handshake(issued, name)
    assert cert == _cert(issued / "server.pem")


@pytest.mark.parametrize("name", ["a.b.dockyard.localhost", "example.com", "10.0.0.1"])
async def test_names_not_in_the_certificate_are_refused(issued, name):
    with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
        await _handshake(issued, name)


async def test_a_single_label_wildcard_matches_nothing(tmp_path):
    ca, _ = tls.load_or_create_ca(tmp_path)
    tls.issue_server_cert(ca, tmp_path, "localhost", ["myreg1"])
    await _handshake(tmp_path, "myreg1.localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(tmp_path, "otherreg.localhost")


async def test_clients_not_trusting_the_ca_refuse(issued, tmp_path_factory):
    other = tmp_path_factory.mktemp("other-ca")
    tls.create_ca(other)
    (issued / "ca.pem").write_bytes((other / "ca.pem").read_bytes())
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await _handshake(issued, "localhost")


def test_server_context_errors_are_clear(issued):
    with pytest.raises(ValueError, match="does not exist"):
        tls.server_ssl_context(issued / "missing.pem", issued / "server-key.pem")
    with pytest.raises(ValueError, match="cannot use TLS certificate"):
        tls.server_ssl_context(issued / "server.pem", issued / "ca-key.pem")
    context = tls.server_ssl_context(issued / "server.pem", issued / "server-key.pem")
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_settings_from_environment_and_both_or_neither(issued):
    settings = load(environ={"DOCKYARD_TLS_CERT": str(issued / "server.pem"), "DOCKYARD_TLS_KEY": str(issued / "server-key.pem")})
    assert isinstance(ssl_context(settings), ssl.SSLContext)
    assert ssl_context(load(environ={})) is None
    with pytest.raises(ValueError, match="tls_cert is set but tls_key is not"):
        ssl_context(load(environ={"DOCKYARD_TLS_CERT": str(issued / "server.pem")}))
    with pytest.raises(ValueError, match="tls_key is set but tls_cert is not"):
        ssl_context(load(environ={}, tls_key=str(issued / "server-key.pem")))


def test_settings_from_a_file(issued, tmp_path):
    config = tmp_path / "dockyard.yaml"
    config.write_text(f"tls-cert: {issued / 'server.pem'}\ntls_key: {issued / 'server-key.pem'}\n")
    settings = load(config, environ={})
    assert (settings.tls_cert, settings.tls_key) == (str(issued / "server.pem"), str(issued / "server-key.pem"))


# ----------------------------------------------------------------------------------- the CLI


def test_cli_cert_create(tmp_path):
    out = tmp_path / "certs"
    args = ["cert", "create", "--domain", "dockyard.localhost", "--out", str(out), "--registry", "myreg1",
            "--registry", "MyReg2", "--san", "192.0.2.9", "--days", "30"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Created the CA" in result.output
    assert str(out / "server.pem") in result.output
    assert "/etc/docker/certs.d/" in result.output and "/etc/containers/certs.d/" in result.output
    assert "myreg2.dockyard.localhost" in result.output
    assert "matches no host name" not in result.output
    cert = _cert(out / "server.pem")
    dns, ips = _sans(cert)
    assert "myreg2.dockyard.localhost" in dns and "192.0.2.9" in ips
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(days=30, minutes=5)
    ca = (out / "ca.pem").read_bytes()

    again = CliRunner().invoke(app, ["cert", "create", "--domain", "dockyard.localhost", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "Reused the CA" in again.output
    assert (out / "ca.pem").read_bytes() == ca


def test_cli_warns_of_a_wildcard_that_matches_nothing(tmp_path):
    result = CliRunner().invoke(app, ["cert", "create", "--domain", "localhost", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "*.localhost matches no host name" in result.output


def test_cli_errors(tmp_path):
    result = CliRunner().invoke(app, ["cert", "create", "--domain", "bad domain", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "invalid domain" in result.output
    result = CliRunner().invoke(app, ["cert", "create", "--domain", "x.test", "--out", str(tmp_path), "--days", "0"])
    assert result.exit_code == 2


def test_serve_refuses_half_a_tls_setting(issued, tmp_path):
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(issued / "server.pem")])
    assert result.exit_code == 2
    assert "tls_cert is set but tls_key is not" in result.output
    result = CliRunner().invoke(
        app, ["serve", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(issued / "server.pem"),
              "--tls-key", str(issued / "ca-key.pem")],
    )
    assert result.exit_code == 2
    assert "cannot use TLS certificate" in result.output
    assert not (tmp_path / "d").exists()


def test_ip_names_are_ip_sans():
    assert tls.server_names("a.test", extra=["[::2]", "10.1.2.3"])[-2:] == ["::2", "10.1.2.3"]
    assert ipaddress.ip_address(tls.server_names("a.test")[3]) == ipaddress.ip_address("127.0.0.1")
