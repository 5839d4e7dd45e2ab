"""``dockyard cert``: a local CA and the server certificate it signs (see dockyard/tls.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="TLS certificates for serving Dockyard over https.", no_args_is_help=True, add_completion=False)


@app.callback()
def _cert() -> None:
    """TLS certificates for serving Dockyard over https."""


@app.command()
def create(
    domain: Annotated[str, typer.Option("--domain", help="Registries answer at <name>.<domain>; e.g. dockyard.localhost.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for ca.pem, ca-key.pem, server.pem, server-key.pem.")],
    registry: Annotated[
        Optional[list[str]], typer.Option("--registry", help="Also name <registry>.<domain> (repeatable).")
    ] = None,
    san: Annotated[
        Optional[list[str]],
        typer.Option("--san", help="Another host name or IP address clients use to reach the server (repeatable)."),
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Days the server certificate is valid.")] = 365,
) -> None:
    """Make a local CA in OUT (unless there is one) and a server certificate signed by it.

    The server certificate names *.DOMAIN, DOMAIN, localhost, 127.0.0.1 and ::1, plus
    NAME.DOMAIN for each --registry and each --san. Run it again to renew the server
    certificate or add names; the CA is reused, so clients keep trusting it.
    """
    from dockyard import tls

    try:
        ca, created = tls.load_or_create_ca(out)
        cert = tls.issue_server_cert(ca, out, domain, registry or (), san or (), days=days)
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    out = Path(out)
    domain = domain.strip().lower().rstrip(".")
    names = tls.certificate_names(cert)
    echo = typer.echo
    echo(f"{'Created' if created else 'Reused'} the CA      {ca.cert_file}  (key {ca.key_file}, keep it private)")
    echo(f"Server certificate  {out / tls.SERVER_CERT}  (key {out / tls.SERVER_KEY})")
    echo(f"  valid until {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC for: {', '.join(names)}")
    if days > tls.MAX_TRUSTED_SERVER_DAYS:
        echo(f"  note: macOS refuses server certificates valid for more than {tls.MAX_TRUSTED_SERVER_DAYS} days")
    if tls.wildcard_matches_nothing(domain):
        echo(
            f"  note: *.{domain} matches no host name (browsers, Go and Python want two labels after the star);"
            f" only the names above work. Prefer a domain like dockyard.{domain}, or name each --registry."
        )
    ca_file = ca.cert_file.resolve()
    echo("")
    echo("Serve with it:")
    echo(f"  dockyard serve --domain {domain} --tls-cert {(out / tls.SERVER_CERT).resolve()}"
         f" --tls-key {(out / tls.SERVER_KEY).resolve()}")
    echo("")
    echo(f"Make clients trust the CA (HOST:PORT as clients write it, e.g. {_example(domain, registry or [])}):")
    echo(f"  docker:                 /etc/docker/certs.d/HOST:PORT/ca.crt          <- {ca_file}")
    echo(f"  podman/buildah/skopeo:  /etc/containers/certs.d/HOST:PORT/ca.crt      <- {ca_file}")
    echo(f"  Python (requests/ssl):  export REQUESTS_CA_BUNDLE={ca_file} SSL_CERT_FILE={ca_file}")
    echo("     or, keeping the public CAs:  cat $(python -m certifi) "
         f"{ca_file} > bundle.pem  and point both at bundle.pem")
    echo(f"  the whole system (Debian): cp {ca_file} /usr/local/share/ca-certificates/dockyard.crt"
         " && update-ca-certificates")


def _example(domain: str, registries: list[str]) -> str:
    if registries:
        return f"{registries[0].lower()}.{domain}:5000"
    return f"{domain}:5000" if domain != "localhost" else "127.0.0.1:5000"
