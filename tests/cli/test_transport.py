"""--endpoint-relative resolution: login servers are reached at the endpoint's address, named as
themselves (Host header, TLS SNI and certificate check)."""

from __future__ import annotations

import http.server
import json
import ssl
import threading

import pytest

from dockyard.cli.console import CLIError
from dockyard.cli.transport import Transport


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        sni = getattr(self.server, "last_sni", None)
        body = json.dumps({"host": self.headers.get("Host"), "path": self.path, "sni": sni}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server(request):
    """(server, scheme); TLS with a certificate for *.dockyard.test when the param says so."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    tls_dir = getattr(request, "param", None)
    if tls_dir is not None:
        from dockyard import tls

        directory = request.getfixturevalue("tmp_path")
        ca, _ = tls.load_or_create_ca(directory)
        tls.issue_server_cert(ca, directory, "dockyard.test")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(directory / tls.SERVER_CERT, directory / tls.SERVER_KEY)

        def remember(sock, name, ctx):
            server.last_sni = name

        context.sni_callback = remember
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.ca_file = str(directory / tls.CA_CERT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_names_under_the_domain_reach_the_endpoint(echo_server):
    port = echo_server.server_address[1]
    with Transport(f"http://127.0.0.1:{port}") as transport:
        transport.map_login_server("myreg.dockyard.test:443")
        body = transport.request("GET", "http://myreg.dockyard.test/v2/").json()
        assert body["host"] == "myreg.dockyard.test"
        assert body["path"] == "/v2/"
        # the endpoint itself still works
        assert transport.request("GET", f"http://127.0.0.1:{port}/x").json()["path"] == "/x"


def test_unmapped_names_resolve_normally(echo_server):
    port = echo_server.server_address[1]
    with Transport(f"http://127.0.0.1:{port}") as transport:
        with pytest.raises(CLIError):
            transport.request("GET", "http://myreg.not-mapped.invalid/v2/")


@pytest.mark.parametrize("echo_server", ["tls"], indirect=True)
def test_tls_sni_and_certificate_use_the_login_server_name(echo_server):
    port = echo_server.server_address[1]
    with Transport(f"https://127.0.0.1:{port}", echo_server.ca_file) as transport:
        transport.map_domain("dockyard.test")
        body = transport.request("GET", f"https://myreg.dockyard.test:{port}/v2/").json()
        assert body["host"] == f"myreg.dockyard.test:{port}"
        assert body["sni"] == "myreg.dockyard.test"


@pytest.mark.parametrize("echo_server", ["tls"], indirect=True)
def test_untrusted_certificate_is_one_clear_error(echo_server):
    port = echo_server.server_address[1]
    with Transport(f"https://127.0.0.1:{port}") as transport:  # system CAs only
        with pytest.raises(CLIError) as info:
            transport.request("GET", f"https://127.0.0.1:{port}/v2/")
    assert "--ca-bundle" in info.value.message
