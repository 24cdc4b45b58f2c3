"""Registry federation between the two local registries, driven as an operator drives it.

Site A is a gateway (``faust -A agents.gateway worker``) mirroring the stand-in upstream
(ZTF containers and Rubin-framed LSST alerts) into its ``alerts`` topic with the local
registry (8081). ``brokerapp registry export`` (a subprocess, site A's settings) writes its ID
map; ``brokerapp registry import`` (site B's settings: the *other* registry, 8082, a fresh
subject and app prefix) loads it. Site B's gateway, configured from site A's published stream
description of ``alerts`` (``BROKER_UPSTREAM_DESCRIPTION``, whose registry URL points
nowhere), then follows site A's ``alerts`` topic: every message must come out framed with
site B's IDs and decode, with site B's registry alone, to the record of the input file (read with
fastavro). Conflicts: a second import reuses, a document mapping a known ID to another schema
is refused with the ID named, exit 1, nothing written.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import sys
import uuid

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from brokerapp.adapters.registry import RegistryClient
from brokerapp.wire.codecs import ConfluentCodec, SchemaCache, unframe

from .test_gateway import (
    LSST_FILES,
    ZTF_FILES,
    lsst_values,
    read_file,
    read_local,
    register_upstream,
    send_upstream,
)
from .workers import REPO, GatewayRun

NOWHERE = "http://127.0.0.1:9/apis/ccompat/v7"


def sha(schema) -> str:
    return hashlib.sha256(to_parsing_canonical_form(schema).encode()).hexdigest()


def header_schema(path) -> dict:
    """The writer schema of a ZTF container, as its header holds it."""
    with path.open("rb") as fo:
        return json.loads(fastavro.reader(fo).metadata["avro.schema"])


def cli(args, env, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "brokerapp", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def site_a(tmp_path, services):
    (tmp_path / "a").mkdir()
    run = GatewayRun(tmp_path / "a")
    yield run
    run.stop()


@pytest.fixture
def site_b(tmp_path, services, site_a, settings):
    """Site B, configured from site A's published description of its alerts stream.

    Site A publishes its registry as unreachable from B (``BROKER_STREAMS_REGISTRY_URL``),
    so site B can only map site A's IDs through the imported table.
    """
    (tmp_path / "b").mkdir()
    described = cli(
        ["streams", "describe", "alerts"], {**site_a.env(), "BROKER_STREAMS_REGISTRY_URL": NOWHERE}
    )
    assert described.returncode == 0, described.stderr
    description = tmp_path / "b" / "site-a-alerts.json"
    description.write_text(described.stdout)
    run = GatewayRun(tmp_path / "b")
    run.env_overrides.update(
        BROKER_REGISTRY_URL=settings.upstream_registry_url,
        BROKER_UPSTREAM_DESCRIPTION=str(description),
        # Upstream and local are one cluster here: the mirror's group must not be the app id.
        BROKER_GATEWAY_GROUP=f"{run.prefix}-follower",
    )
    yield run
    run.stop()


async def test_export_import_lets_a_second_site_follow_without_the_first_registry(
    settings, site_a, site_b
):
    # Site A mirrors real alerts; the upstream registry numbers the LSST schema.
    lsst_topic, ztf_topic = site_a.lsst_topic("20260201"), site_a.ztf_topic("20260201")
    lsst_schema = read_file(LSST_FILES[0])[1]
    upstream_id = await register_upstream(settings, lsst_topic, lsst_schema)
    lsst, lsst_records = lsst_values(upstream_id)
    ztf_raw = [read_file(p)[0] for p in ZTF_FILES]
    ztf_records = [read_file(p)[2] for p in ZTF_FILES]
    ztf_schemas = {sha(schema): schema for schema in map(header_schema, ZTF_FILES)}
    send_upstream(settings, ztf_topic, ztf_raw)
    send_upstream(settings, lsst_topic, lsst)
    total = len(lsst) + len(ztf_raw)
    site_a.start()
    site_a.wait_status(lambda s: s["mirrored"] >= total, what=f"site A mirrors {total}")
    site_a.stop()
    async with RegistryClient(settings.registry_url) as local:
        a_lsst = await local.lookup(f"{site_a.alerts}-value", lsst_schema)
        a_ztf = {
            fp: await local.lookup(f"{site_a.alerts}-value", schema)
            for fp, schema in ztf_schemas.items()
        }
    assert a_lsst is not None and None not in a_ztf.values()

    # Export at site A.
    export = cli(["registry", "export", "-o", str(site_a.workdir / "ids.json")], site_a.env())
    assert export.returncode == 0, export.stderr
    document = json.loads((site_a.workdir / "ids.json").read_text())
    assert document["ids"] == {
        f"confluent:{upstream_id}": a_lsst,
        **{f"inline:{fp}": a_id for fp, a_id in a_ztf.items()},
    }
    assert {k: v["fingerprint"] for k, v in document["schemas"].items()} == {
        str(a_lsst): sha(lsst_schema),
        **{str(a_id): fp for fp, a_id in a_ztf.items()},
    }

    # Import at site B, into the other registry under a fresh subject.
    subject = f"{site_b.prefix}-federated-{uuid.uuid4().hex[:8]}-value"
    path = site_a.workdir / "ids.json"
    imported = cli(["registry", "import", str(path), "--subject", subject], site_b.env())
    assert imported.returncode == 0, imported.stderr
    async with RegistryClient(settings.upstream_registry_url) as other:
        b_lsst = await other.lookup(subject, lsst_schema)
        b_ztf = {fp: await other.lookup(subject, schema) for fp, schema in ztf_schemas.items()}
    assert b_lsst is not None and None not in b_ztf.values()
    assert f"schema ID {a_lsst} -> local ID {b_lsst} (registered)" in imported.stdout
    for fp, a_id in a_ztf.items():
        assert f"schema ID {a_id} -> local ID {b_ztf[fp]} (registered)" in imported.stdout

    # Site B's gateway follows site A's alerts topic, its upstream registry unreachable.
    site_b.start()
    status = site_b.wait_status(lambda s: s["mirrored"] >= total, what=f"site B mirrors {total}")
    # The pattern came from the description: site A's alerts topic and nothing else.
    assert re.match(status["pattern"], site_a.alerts)
    assert not re.match(status["pattern"], f"{site_a.alerts}-solar")
    assert status["deadlettered"] == 0
    assert status["registry_calls"] == {}  # neither registry asked: the imported map sufficed
    messages = read_local(settings, site_b.alerts, total)
    assert len(messages) == total
    async with RegistryClient(settings.upstream_registry_url) as other:
        codec = ConfluentCodec(other, SchemaCache())
        decoded = [await codec.decode(m.value()) for m in messages]
    ids = sorted(unframe(m.value())[0] for m in messages)
    expected_ids = [b_lsst] * len(lsst) + [b_ztf[sha(header_schema(p))] for p in ZTF_FILES]
    assert ids == sorted(expected_ids)
    records = [record for _id, record in decoded]
    assert sorted(records, key=repr) == sorted(lsst_records + ztf_records, key=repr)

    # Importing again reuses every ID and registers nothing.
    again = cli(["registry", "import", str(path), "--subject", subject], site_b.env())
    assert again.returncode == 0, again.stderr
    assert f"schema ID {a_lsst} -> local ID {b_lsst} (already known)" in again.stdout
    assert "0 registered" in again.stdout

    # A document putting another schema under a known ID is refused, naming the ID.
    spoiled = copy.deepcopy(document)
    some_ztf = next(iter(a_ztf.values()))
    spoiled["schemas"][str(a_lsst)] = document["schemas"][str(some_ztf)]
    spoiled["schemas"][str(some_ztf)] = document["schemas"][str(a_lsst)]
    refused = cli(
        ["registry", "import", "-", "--subject", subject], site_b.env(), json.dumps(spoiled)
    )
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert f"schema ID {a_lsst}" in refused.stderr and "different schema" in refused.stderr
    # Nothing was written: a fresh export of site B still holds the first import's pairs.
    b_export = cli(["registry", "export"], site_b.env())
    assert b_export.returncode == 0, b_export.stderr
    b_ids = json.loads(b_export.stdout)["ids"]
    assert b_ids == {
        f"confluent:{a_lsst}": b_lsst,
        **{f"confluent:{a_id}": b_ztf[fp] for fp, a_id in a_ztf.items()},
    }


def test_a_tampered_document_is_refused_with_the_field_named(tmp_path, settings, services):
    env = GatewayRun(tmp_path).env()
    schema = header_schema(ZTF_FILES[0])
    document = {
        "format": "brokerapp.registry-export/1",
        "site": {},
        "ids": {"confluent:5": 5},
        "schemas": {"5": {"fingerprint": "0" * 64, "schema": json.dumps(schema)}},
    }
    done = cli(["registry", "import", "-"], env, json.dumps(document))
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("Error: <stdin>: schemas.5.fingerprint: ")
    assert sha(schema) in line
