"""Registry security: HTTPS with a CA file, basic auth, secrets masked (issue 15 item 2).

The client side is checked against a tiny HTTPS server of the standard library, run in a
thread of the test on loopback, serving ``GET /apis/ccompat/v7/schemas/ids/{id}`` with a
certificate from :func:`~brokerapp.tools.services.tls.ensure_registry_tls` (signed by a CA of
the test's own) and recording each request's ``Authorization`` header. Apicurio itself over
TLS is driven in ``tests/integration/test_registry_tls.py``.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509

from brokerapp.adapters.registry import (
    RegistryAccess,
    open_registry,
    registry_access,
    registry_client,
    split_user_info,
)
from brokerapp.model.settings import load_settings
from brokerapp.tools.cli import main
from brokerapp.tools.services.config import registry_options
from brokerapp.tools.services.tls import ensure_registry_tls, ensure_upstream_tls

SCHEMA = '{"type": "record", "name": "A", "fields": []}'


@dataclass
class FakeRegistry:
    """The HTTPS stand-in: its base URL, CA file and the Authorization headers it saw."""

    url: str
    ca: Path
    authorizations: list[str | None] = field(default_factory=list)


@pytest.fixture
def https_registry(tmp_path) -> Iterator[FakeRegistry]:
    cert = ensure_registry_tls(tmp_path, "127.0.0.1", "test")
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            seen.append(self.headers.get("Authorization"))
            body = json.dumps({"schema": SCHEMA}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.certificate, cert.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield FakeRegistry(f"https://127.0.0.1:{port}/apis/ccompat/v7", cert.ca, seen)
    finally:
        server.shutdown()
        server.server_close()


def basic(user_info: str) -> str:
    return "Basic " + base64.b64encode(user_info.encode()).decode()


async def test_the_factory_gives_httpx_the_ca_and_the_credentials(https_registry, tmp_path):
    settings = load_settings(
        home=tmp_path,
        registry_url=https_registry.url,
        registry_ca_file=https_registry.ca,
        registry_basic_auth_user_info="alice:al1ce-s3cret",
    )
    async with registry_client(settings) as registry:
        assert await registry.get_schema(7) == SCHEMA
    assert https_registry.authorizations == [basic("alice:al1ce-s3cret")]


async def test_the_upstream_side_takes_its_own_settings(https_registry, tmp_path):
    settings = load_settings(
        home=tmp_path,
        upstream_registry_url=https_registry.url,
        upstream_registry_ca_file=https_registry.ca,
        upstream_registry_basic_auth_user_info="bob:b0b",
    )
    async with registry_client(settings, "upstream") as registry:
        assert await registry.get_schema(1) == SCHEMA
    assert https_registry.authorizations == [basic("bob:b0b")]


async def test_the_upstream_trusts_the_project_ca_by_default(https_registry, tmp_path):
    # ensure_registry_tls made <tmp_path>/tls/ca.pem: the project CA of this home.
    settings = load_settings(home=tmp_path, upstream_registry_url=https_registry.url)
    access = registry_access(settings, "upstream")
    assert access.cafile is None
    assert access.extra_cafile == (tmp_path / "tls" / "ca.pem").resolve()
    async with registry_client(settings, "upstream") as registry:
        assert await registry.get_schema(1) == SCHEMA
    assert https_registry.authorizations == [None]


async def test_credentials_in_the_url_are_sent_and_never_shown(https_registry, tmp_path):
    with_info = https_registry.url.replace("https://", "https://carol:c%40rol-s3cret@")
    settings = load_settings(
        home=tmp_path, registry_url=with_info, registry_ca_file=https_registry.ca
    )
    async with registry_client(settings) as registry:
        assert "s3cret" not in registry.url
        assert await registry.get_schema(3) == SCHEMA
        with pytest.raises(httpx.HTTPError) as caught:
            await registry._http.get("https://127.0.0.1:1/none")
        assert "s3cret" not in str(caught.value)
    assert https_registry.authorizations == [basic("carol:c@rol-s3cret")]
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in json.dumps(settings.masked())


async def test_https_without_the_ca_fails_with_a_certificate_error(https_registry, tmp_path):
    settings = load_settings(home=tmp_path, registry_url=https_registry.url)
    assert registry_access(settings).cafile is None  # the system store
    async with registry_client(settings) as registry:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await registry.get_schema(1)
    assert https_registry.authorizations == []  # nothing was sent


def test_a_ca_file_is_the_only_trust_and_without_one_the_system_store(tmp_path):
    cert = ensure_registry_tls(tmp_path, "127.0.0.1", "x")
    ca_subject = x509.load_pem_x509_certificate(cert.ca.read_bytes()).subject.rfc4514_string()
    only = RegistryAccess("https://h/x", cafile=cert.ca).ssl_context()
    assert [dict(x[0] for x in c["subject"]) for c in only.get_ca_certs()] == [
        {"commonName": ca_subject.removeprefix("CN=")}
    ]
    assert only.verify_mode == ssl.CERT_REQUIRED and only.check_hostname
    system = RegistryAccess("https://h/x").ssl_context()
    default = ssl.create_default_context()
    assert system.cert_store_stats() == default.cert_store_stats()
    assert system.verify_mode == ssl.CERT_REQUIRED and system.check_hostname
    # http URLs get no TLS context at all.
    assert open_registry("http://127.0.0.1:1/x").url == "http://127.0.0.1:1/x"


def test_user_info_is_split_from_the_url():
    bare, info = split_user_info("https://u:p%3Aq@reg.example:8443/apis/ccompat/v7")
    assert bare == "https://reg.example:8443/apis/ccompat/v7"
    assert info.get_secret_value() == "u:p:q"
    assert RegistryAccess(bare, user_info=info).auth == ("u", "p:q")
    bare, info = split_user_info("http://127.0.0.1:8081/apis/ccompat/v7")
    assert bare == "http://127.0.0.1:8081/apis/ccompat/v7" and not info.get_secret_value()


def test_the_setting_wins_over_the_url_user_info(tmp_path):
    settings = load_settings(
        home=tmp_path,
        registry_url="https://url-user:url-pw@reg.example/apis/ccompat/v7",
        registry_basic_auth_user_info="set-user:set-pw",
    )
    assert registry_access(settings).auth == ("set-user", "set-pw")
    assert settings.registry_port() == 443


def test_brokerapp_config_masks_the_registry_credentials(tmp_path, caplog):
    env = {
        "BROKER_HOME": str(tmp_path),
        "BROKER_REGISTRY_URL": "https://dave:urls3cret@reg.example/apis/ccompat/v7",
        "BROKER_REGISTRY_BASIC_AUTH_USER_INFO": "dave:local-s3cret",
        "BROKER_UPSTREAM_REGISTRY_BASIC_AUTH_USER_INFO": "erin:upstream-s3cret",
        "BROKER_UPSTREAM_REGISTRY_CA_FILE": str(tmp_path / "ca.pem"),
    }
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(main, ["config"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["registry_basic_auth_user_info"] == "**********"
    assert shown["upstream_registry_basic_auth_user_info"] == "**********"
    assert shown["registry_url"] == "https://dave:**********@reg.example/apis/ccompat/v7"
    assert shown["upstream_registry_ca_file"] == str(tmp_path / "ca.pem")
    assert "s3cret" not in result.output
    assert "s3cret" not in caplog.text


def test_an_https_registry_serves_tls_only_with_the_pem_files(tmp_path):
    cert = ensure_registry_tls(tmp_path, "127.0.0.1", "upstream")
    options = registry_options("upstream", 8082, None, cert)
    assert options["quarkus.http.ssl-port"] == 8082
    assert options["quarkus.http.ssl.certificate.files"] == cert.certificate
    assert options["quarkus.http.ssl.certificate.key-files"] == cert.key
    assert options["quarkus.http.insecure-requests"] == "disabled"
    assert "apicurio.storage.kind" not in options  # None: in-memory storage
    assert cert.key.stat().st_mode & 0o077 == 0
    # Made once: a second call keeps the same certificate.
    again = ensure_registry_tls(tmp_path, "127.0.0.1", "upstream")
    assert again.certificate.read_bytes() == cert.certificate.read_bytes()


def test_a_new_ca_replaces_the_registry_certificate(tmp_path):
    first = ensure_registry_tls(tmp_path, "127.0.0.1", "local")
    old = first.certificate.read_bytes()
    for name in ("ca.pem", "ca.key"):
        (tmp_path / "tls" / name).unlink()
    # The Kafka side makes the new CA first; the registry's old certificate must not stay.
    ensure_upstream_tls(tmp_path, "127.0.0.1")
    second = ensure_registry_tls(tmp_path, "127.0.0.1", "local")
    assert second.certificate.read_bytes() != old
    ca = x509.load_pem_x509_certificate(second.ca.read_bytes())
    x509.load_pem_x509_certificate(second.certificate.read_bytes()).verify_directly_issued_by(ca)
