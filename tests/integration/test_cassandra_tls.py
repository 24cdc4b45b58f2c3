"""The Cassandra store over TLS, against a Cassandra node of its own that requires TLS.

The node runs in a temporary home on free ports with client encryption on (not optional),
serving a certificate for 127.0.0.1 signed by a CA the services' TLS module makes
(:func:`~brokerapp.tools.services.tls.ensure_upstream_tls`, as a PKCS#12 keystore). Its roles
are not bootstrapped: the store logs in as the default cassandra/cassandra.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from brokerapp.adapters.stores import StoreUnavailable, open_store
from brokerapp.model.settings import load_settings
from brokerapp.tools.services.manager import Services
from brokerapp.tools.services.tls import ensure_upstream_tls

KEYSPACE = "dbauth_tls"


def _unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tls_node(request, tmp_path_factory):
    lib = Services(load_settings()).lib
    if not any((lib / "cassandra").glob("cassandra-all-*.jar")):
        reason = "Cassandra jars not installed: run `brokerapp services install`"
        if request.config.getoption("--need-servers"):
            pytest.fail(reason)
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("dbauth-ctls")
    (home / "lib").symlink_to(lib)
    keystore = ensure_upstream_tls(home, "127.0.0.1")
    other_ca = ensure_upstream_tls(home / "other", "127.0.0.1").ca
    settings = load_settings(
        home=home,
        cassandra_port=_unused_port(),
        cassandra_storage_port=_unused_port(),
        cassandra_heap="512M",
        cassandra_keyspace=KEYSPACE,
        cassandra_user="cassandra",
        cassandra_password="cassandra",
        startup_timeout=300,
    )
    svc = Services(settings)
    node = svc.cassandra()
    config = home / "cassandra" / "cassandra.yaml"
    with open(config, "a") as out:
        out.write(
            "client_encryption_options:\n"
            "  enabled: true\n"
            "  optional: false\n"
            f"  keystore: {keystore.keystore}\n"
            f"  keystore_password: {keystore.password}\n"
            "  store_type: PKCS12\n"
        )
    svc.start(node)
    try:
        # The plain-text readiness probe cannot talk to a TLS-only port: wait for a TLS store.
        tls = settings.model_copy(update={"cassandra_ssl_ca": keystore.ca})
        for _ in range(300):
            if svc.pid("cassandra") is None:
                pytest.fail(f"cassandra exited:\n{svc.log_tail('cassandra')}")
            try:
                asyncio.run(_close(open_store(tls, "cassandra")))
                break
            except StoreUnavailable:
                time.sleep(1)
        else:
            pytest.fail("the TLS node did not answer a TLS client")
        yield tls, other_ca
    finally:
        svc.down()


async def _close(opening):
    store = await opening
    await store.close()


async def test_the_store_writes_and_reads_over_tls(tls_node):
    settings, _ = tls_node
    store = await open_store(settings, "cassandra")
    try:
        await store.migrate()
        row = {"object_id": "ZTF26ctls", "source": "dbauth", "entry": "e1", "alert_id": 6}
        await store.upsert("annotations", [row])
        (read,) = await store.fetch("annotations", alert_id=6)
        assert {k: read[k] for k in row} == row
    finally:
        await store.close()


async def test_without_tls_the_node_does_not_answer(tls_node):
    settings, _ = tls_node
    with pytest.raises(StoreUnavailable):
        await open_store(settings.model_copy(update={"cassandra_ssl_ca": None}), "cassandra")


async def test_a_certificate_from_another_ca_is_refused(tls_node):
    settings, other_ca = tls_node
    with pytest.raises(StoreUnavailable, match="(?i)certificate"):
        await open_store(settings.model_copy(update={"cassandra_ssl_ca": other_ca}), "cassandra")
