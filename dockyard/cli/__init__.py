"""The ``dockyard`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dockyard.cli import account, acr, ad, arguments, cert, groups, role

app = typer.Typer(help="Dockyard: a self-hosted container registry.", no_args_is_help=True, add_completion=False)
app.add_typer(cert.app, name="cert")
# the az-compatible client: login/logout/account, group, acr, ad, role
account.register(app)
app.add_typer(groups.app, name="group")
app.add_typer(acr.app, name="acr")
app.add_typer(ad.app, name="ad")
app.add_typer(role.app, name="role")


@app.callback()
def _root() -> None:
    """Dockyard: a self-hosted container registry."""


@app.command()
def serve(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Folder for the database, blobs and keys.")] = None,
    listen: Annotated[Optional[str], typer.Option("--listen", help="HOST:PORT to listen on.")] = None,
    domain: Annotated[Optional[str], typer.Option("--domain", help="Registries answer at <name>.<domain>.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML settings file.")] = None,
    database_url: Annotated[Optional[str], typer.Option("--database-url", help="Metadata database URL.")] = None,
    storage_url: Annotated[Optional[str], typer.Option("--storage-url", help="Blob storage URL.")] = None,
    tls_cert: Annotated[Optional[str], typer.Option("--tls-cert", help="Serve https with this certificate (PEM).")] = None,
    tls_key: Annotated[Optional[str], typer.Option("--tls-key", help="Private key (PEM) of --tls-cert.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                         help="Serving processes sharing the port (SO_REUSEPORT).")] = 1,
) -> None:
    """Run the registry on the embedded defaults (SQLite + filesystem) or as configured."""
    from dockyard import config as settings_module
    from dockyard import server

    try:
        settings = settings_module.load(
            config, data_dir=data_dir, listen=listen, domain=domain, database_url=database_url, storage_url=storage_url,
            tls_cert=tls_cert, tls_key=tls_key,
        )
        settings.port  # noqa: B018 - validates --listen
        server.ssl_context(settings)  # validates --tls-cert and --tls-key
    except (ValueError, OSError, IndexError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    server.main(settings, workers)


@app.command()
def worker(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Folder for the database, blobs and keys.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML settings file.")] = None,
    database_url: Annotated[Optional[str], typer.Option("--database-url", help="Metadata database URL.")] = None,
    storage_url: Annotated[Optional[str], typer.Option("--storage-url", help="Blob storage URL.")] = None,
) -> None:
    """Run the background work (outbox consumers, upload expiry) apart from serving."""
    from dockyard import config as settings_module
    from dockyard import server

    try:
        settings = settings_module.load(config, data_dir=data_dir, database_url=database_url, storage_url=storage_url)
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    server.main_worker(settings)


def main() -> None:
    import sys

    app(args=arguments.rewrite(sys.argv[1:]))  # az's multi-word options (--tags a=b c=d) and bare three-state flags
