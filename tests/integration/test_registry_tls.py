"""Apicurio Registry behind TLS, as the embedded upstream serves it with an ``https`` URL.

The test starts its OWN Apicurio (the project's jar, through ``Services.registry`` exactly
as ``services up --upstream`` would with ``BROKER_UPSTREAM_REGISTRY_URL=https://...``), in a
home of its own (its CA and certificate under ``<tmp>/tls``, its pid and log files there),
on free ports and with Apicurio's in-memory storage, so the shared registries and their
journals are never touched. It checks what an operator would:

- the broker's registry client, given the CA, registers a schema and fetches it back by ID
  over HTTPS (the plain-HTTP port is closed);
- without the CA it fails at once with a certificate error, not a time-out;
- the project CA is trusted by default for the upstream registry (``upstream_cafile``).

Apicurio's own authentication needs an OpenID Connect server (Keycloak) even for basic
auth, which does not run here: the basic-auth header is checked against a standard-library
HTTPS server in ``tests/unit/test_registry_security.py``; here the header is sent (with
``upstream_registry_basic_auth_user_info``) and Apicurio, with auth off, ignores it.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from brokerapp.adapters.registry import registry_client
from brokerapp.model.settings import Settings, load_settings
from brokerapp.tools.services.manager import Services
from brokerapp.tools.services.process import ServiceError

SCHEMA = {
    "type": "record",
    "name": "RegtlsProbe",
    "namespace": "test.regtls",
    "fields": [{"name": "id", "type": "long"}],
}


def _free_port_pair() -> int:
    """Return a free port whose successor is free too (Apicurio's disabled HTTP port)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two free consecutive ports")


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory, request) -> Iterator[Settings]:
    shared = load_settings()
    jar_home = shared.data_dir / "lib"
    if not any((jar_home / "apicurio").glob("*-runner.jar")):
        message = "Apicurio jar not installed (`brokerapp services install`)"
        if request.config.getoption("--need-servers"):
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path_factory.mktemp("regtls-home")
    (home / "lib").symlink_to(jar_home)
    port = _free_port_pair()
    settings = load_settings(
        home=home,
        upstream_registry_url=f"https://127.0.0.1:{port}/apis/ccompat/v7",
        registry_heap="256m",
        startup_timeout=max(shared.startup_timeout, 120.0),
    )
    services = Services(settings)
    service = services.registry("upstream", in_memory=True)
    services.start(service)
    try:
        services.wait_ready([service])
        yield settings
    except ServiceError as exc:
        pytest.fail(f"the TLS registry did not start: {exc}")
    finally:
        services.stop(service.name)


async def test_the_client_with_the_ca_registers_and_fetches_over_https(tls_registry):
    ca = tls_registry.data_dir / "tls" / "ca.pem"
    settings = load_settings(
        home=tls_registry.home,
        upstream_registry_url=tls_registry.upstream_registry_url,
        upstream_registry_ca_file=ca,
        upstream_registry_basic_auth_user_info="regtls:unused-by-apicurio",
    )
    subject = f"regtls-{uuid.uuid4().hex[:8]}-value"
    async with registry_client(settings, "upstream") as registry:
        assert registry.url.startswith("https://")
        schema_id = await registry.register(subject, SCHEMA)
        assert await registry.lookup(subject, SCHEMA) == schema_id
    async with registry_client(settings, "upstream") as fresh:  # no cache
        fetched = await fresh.get_schema(schema_id)
    assert '"RegtlsProbe"' in fetched


async def test_the_project_ca_is_trusted_by_default_for_the_upstream(tls_registry):
    async with registry_client(tls_registry, "upstream") as registry:
        assert await registry.ready()
        assert isinstance(await registry.subjects(), list)


async def test_without_the_ca_it_fails_fast_with_a_certificate_error(tls_registry, tmp_path):
    # Another home has no project CA: only the system store, which does not know ours.
    settings = load_settings(home=tmp_path, registry_url=tls_registry.upstream_registry_url)
    async with registry_client(settings) as registry:
        # A ConnectError at the handshake (not a ConnectTimeout): refused at once.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await registry.get_schema(1)
        assert not await registry.ready()


def test_plain_http_is_not_served(tls_registry):
    port = tls_registry.upstream_registry_port()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/apis/ccompat/v7/subjects", timeout=5.0)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port + 1}/apis/ccompat/v7/subjects", timeout=5.0)
