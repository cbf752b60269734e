"""TLS to a GitHub Enterprise Server with a private CA: refused without the CA bundle, trusted with it.

A real HTTPS server on 127.0.0.1, with a certificate made here for that address, forwards every
request to the stub GitHub, so the same link works end to end once the CA is trusted.
"""

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devlink.hosts.base import HostError
from devlink.runtime import Runtime
from devlink.sync.accounts import AccountOptions, link_account
from github_world import TOKEN, GitHubWorld


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ghe.test private CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_front(github: GitHubWorld, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``https://127.0.0.1:PORT`` forwarding to the stub; yields its URL and the CA file that trusts it."""
    cert, key = self_signed(tmp_path)
    upstream = github.stub.web_url

    class Forward(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = httpx.request(self.command, upstream + self.path, headers=headers,
                                   content=self.rfile.read(length) if length else None)
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                    self.send_header(name, value.replace(upstream, f"https://127.0.0.1:{port}"))
            body = answer.content.replace(upstream.encode(), f"https://127.0.0.1:{port}".encode())
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    port = server.server_port
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{port}", cert
    server.shutdown()
    server.server_close()


def test_an_untrusted_certificate_names_the_host_and_asks_for_a_ca_bundle(
    runtime: Runtime, github: GitHubWorld, tls_front: tuple[str, Path]
) -> None:
    url, ca = tls_front
    github.repo("octo", "api")
    with pytest.raises(HostError) as refused:
        link_account(runtime, AccountOptions(name="octo", web_url=url, token=TOKEN))
    assert refused.value.reason == "tls"
    assert "127.0.0.1" in refused.value.message and "certificate not trusted" in refused.value.message
    assert refused.value.hint and "CA bundle" in refused.value.hint
    _, found = link_account(runtime, AccountOptions(name="octo", web_url=url, token=TOKEN, ca_bundle=str(ca)))
    assert found.new == ["octo/api"]


def test_a_missing_ca_bundle_file_is_a_clear_error(runtime: Runtime, github: GitHubWorld, tmp_path: Path) -> None:
    with pytest.raises(HostError) as missing:
        link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN,
                                             ca_bundle=str(tmp_path / "nope.pem")))
    assert missing.value.reason == "tls" and "cannot read the CA bundle" in missing.value.message
