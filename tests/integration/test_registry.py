"""Both Python schema registry clients work against the real local Apicurio Registry.

Proven here, against the registry `brokerapp services up` runs (Apicurio Registry, Kafka-backed
``kafkasql`` storage, Confluent-compatible API under ``/apis/ccompat/v7``), with the real ZTF
alert writer schema (from a ZTF container file in ``tests/data/ztf``) and the LSST 9.0 alert
schema (from ``lsst-alert-packet``):

* python-schema-registry-client's ``AsyncSchemaRegistryClient`` registers a schema under a
  subject, finds it again (``check_version``, ``POST /subjects/{subject}``), fetches it by ID
  (``get_by_id``) and as the subject's latest version (``get_schema``);
* confluent-kafka's ``SchemaRegistryClient`` does the same with ``register_schema``,
  ``lookup_schema``, ``get_schema`` and ``get_latest_version``;
* an ID registered through one client is fetched by the other;
* registering the same schema twice under one subject gives the same ID and no new version;
* schemas survive a restart of the registry (they are stored in Kafka, not in its memory).

Schemas are compared by their Avro Parsing Canonical Form, as the registry may reformat the
text. Every read uses a client that has not seen the schema yet, so the answers come from the
registry and not from a client-side cache.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import fastavro
import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastavro.schema import to_parsing_canonical_form
from schema_registry.client import AsyncSchemaRegistryClient
from schema_registry.client.schema import AvroSchema

from brokerapp.adapters.registry import RegistryClient, RegistryError
from brokerapp.wire.codecs import ParsedSchema, SchemaFileCodec, read_container_file

ZTF_FILE = Path(__file__).parents[1] / "data" / "ztf" / "697252845015010002.avro"
REGISTRY_SERVICE = "registry-local"


def ztf_schema() -> dict:
    """Return the writer schema of a real ZTF alert container file."""
    schema, records = read_container_file(ZTF_FILE)
    with ZTF_FILE.open("rb") as fo:
        header = fastavro.reader(fo).metadata["avro.schema"]
    assert schema.raw == json.loads(header)
    assert schema.name == "ztf.alert" and len(records) == 1
    return schema.raw


def lsst_schema() -> dict:
    """Return the LSST 9.0 alert schema of lsst-alert-packet, references inlined."""
    schema: ParsedSchema = SchemaFileCodec.lsst("9.0").schema
    assert schema.name == "lsst.v9_0.alert"
    return schema.raw


SCHEMAS = {"ztf": ztf_schema, "lsst": lsst_schema}


@pytest.fixture(params=sorted(SCHEMAS))
def alert_schema(request) -> dict:
    """A real alert schema (ZTF or LSST 9.0) as a JSON dict."""
    return SCHEMAS[request.param]()


@pytest.fixture
def fresh_alert_schema(alert_schema) -> dict:
    """The alert schema with a unique top-level doc: new content, so the registry gives it a
    new ID in this run (Apicurio hands out one ID per distinct content, across subjects)."""
    schema = copy.deepcopy(alert_schema)
    schema["doc"] = f"{schema.get('doc', '')} [test {uuid.uuid4().hex}]"
    return schema


@pytest.fixture
def url(settings, services) -> str:
    """Base URL of the local registry's Confluent-compatible API (after the services check)."""
    return settings.registry_url


def canonical(schema: dict | str) -> str:
    """Parsing Canonical Form of a schema given as JSON text or dict."""
    return to_parsing_canonical_form(json.loads(schema) if isinstance(schema, str) else schema)


def confluent(url: str) -> SchemaRegistryClient:
    """A new confluent-kafka registry client (empty caches)."""
    return SchemaRegistryClient({"url": url})


# ------------------------------------------------------------- python-schema-registry-client


async def test_python_client_registers_looks_up_and_fetches(url, unique_topic, alert_schema):
    subject = f"{unique_topic}-value"
    expected = canonical(alert_schema)

    schema_id = await AsyncSchemaRegistryClient(url).register(subject, AvroSchema(alert_schema))
    assert isinstance(schema_id, int) and schema_id >= 0

    found = await AsyncSchemaRegistryClient(url).check_version(subject, AvroSchema(alert_schema))
    assert found is not None
    assert (found.subject, found.schema_id, found.version) == (subject, schema_id, 1)
    assert canonical(found.schema) == expected

    by_id = await AsyncSchemaRegistryClient(url).get_by_id(schema_id)
    assert isinstance(by_id, AvroSchema)
    assert canonical(by_id.raw_schema) == expected

    latest = await AsyncSchemaRegistryClient(url).get_schema(subject)
    assert latest is not None
    assert (latest.schema_id, latest.version) == (schema_id, 1)
    assert canonical(latest.schema.raw_schema) == expected


async def test_python_client_lookup_of_unregistered_schema_is_none(url, unique_topic):
    subject = f"{unique_topic}-value"
    client = AsyncSchemaRegistryClient(url)
    assert await client.check_version(subject, AvroSchema(ztf_schema())) is None
    assert await client.get_schema(subject) is None


# ----------------------------------------------------------------------- confluent-kafka


def test_confluent_client_registers_looks_up_and_fetches(url, unique_topic, alert_schema):
    subject = f"{unique_topic}-value"
    text = json.dumps(alert_schema)
    expected = canonical(alert_schema)

    with confluent(url) as client:
        schema_id = client.register_schema(subject, Schema(text, "AVRO"))
    assert isinstance(schema_id, int) and schema_id >= 0

    with confluent(url) as client:
        found = client.lookup_schema(subject, Schema(text, "AVRO"))
    assert (found.subject, found.schema_id, found.version) == (subject, schema_id, 1)

    with confluent(url) as client:
        by_id = client.get_schema(schema_id)
    assert by_id.schema_type == "AVRO"
    assert canonical(by_id.schema_str) == expected

    with confluent(url) as client:
        latest = client.get_latest_version(subject)
    assert (latest.subject, latest.schema_id, latest.version) == (subject, schema_id, 1)
    assert canonical(latest.schema.schema_str) == expected


# ----------------------------------------------------------------------------- cross-client


async def test_id_from_python_client_is_fetched_by_confluent_client(
    url, unique_topic, fresh_alert_schema
):
    subject = f"{unique_topic}-value"
    schema_id = await AsyncSchemaRegistryClient(url).register(
        subject, AvroSchema(fresh_alert_schema)
    )

    with confluent(url) as client:
        by_id = client.get_schema(schema_id)
        latest = client.get_latest_version(subject)
    assert canonical(by_id.schema_str) == canonical(fresh_alert_schema)
    assert (latest.schema_id, latest.version) == (schema_id, 1)
    assert json.loads(by_id.schema_str)["doc"] == fresh_alert_schema["doc"]


async def test_id_from_confluent_client_is_fetched_by_python_client(
    url, unique_topic, fresh_alert_schema
):
    subject = f"{unique_topic}-value"
    with confluent(url) as client:
        schema_id = client.register_schema(subject, Schema(json.dumps(fresh_alert_schema), "AVRO"))

    by_id = await AsyncSchemaRegistryClient(url).get_by_id(schema_id)
    assert by_id is not None
    assert canonical(by_id.raw_schema) == canonical(fresh_alert_schema)
    assert by_id.raw_schema["doc"] == fresh_alert_schema["doc"]
    found = await AsyncSchemaRegistryClient(url).check_version(
        subject, AvroSchema(fresh_alert_schema)
    )
    assert found is not None and (found.schema_id, found.version) == (schema_id, 1)


# ----------------------------------------------------------------------------- idempotence


async def test_registering_the_same_schema_twice_gives_the_same_id(url, unique_topic, alert_schema):
    subject = f"{unique_topic}-value"
    text = json.dumps(alert_schema)

    # Fresh clients each time: no client-side cache can answer instead of the registry. The
    # confluent client always POSTs /subjects/{subject}/versions; the python client asks
    # POST /subjects/{subject} first and registers only if that finds nothing.
    with confluent(url) as client:
        first = client.register_schema(subject, Schema(text, "AVRO"))
    with confluent(url) as client:
        second = client.register_schema(subject, Schema(text, "AVRO"))
    third = await AsyncSchemaRegistryClient(url).register(subject, AvroSchema(alert_schema))

    assert first == second == third
    assert await AsyncSchemaRegistryClient(url).get_versions(subject) == [1]
    with confluent(url) as client:
        assert client.get_versions(subject) == [1]


# ------------------------------------------------------------------------------- restart


async def wait_storage_ready(url: str, timeout: float) -> None:
    """Wait until Apicurio's own readiness check passes (its kafkasql journal is replayed).

    ``Services.wait_ready`` only waits for ``GET /subjects`` to answer 200, which a restarted
    Apicurio does while it is still replaying its Kafka journal: for about half a second it
    lists a growing subset of the subjects and answers 404 for schema IDs not replayed yet,
    while ``/health/ready`` (``PersistenceSimpleReadinessCheck``) answers 503.
    """
    parts = urlsplit(url)
    health = f"{parts.scheme}://{parts.netloc}/health/ready"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=5.0) as http:
        while (status := (await http.get(health)).status_code) != httpx.codes.OK:
            if loop.time() > deadline:
                pytest.fail(f"{health} still answers {status} after {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def ask_while_starting(url: str, schema_id: int, subject: str, schema: dict) -> Counter:
    """Fetch and re-register through RegistryClient until the registry is ready; tally."""
    outcomes: Counter = Counter()
    parts = urlsplit(url)
    health = f"{parts.scheme}://{parts.netloc}/health/ready"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    async with RegistryClient(url) as client, httpx.AsyncClient(timeout=5.0) as http:
        while loop.time() < deadline:
            for call in (client.get_schema(schema_id), client.register(subject, schema)):
                try:
                    answer = await call
                    right = (
                        canonical(answer) == canonical(schema)
                        if isinstance(answer, str)
                        else (answer == schema_id)
                    )
                    outcomes["right" if right else f"wrong answer {answer!r}"] += 1
                except httpx.TransportError:
                    outcomes["unreachable"] += 1
                except RegistryError as exc:
                    outcomes[f"not ready ({exc.status})" if exc.status == 503 else repr(exc)] += 1
                except KeyError as exc:
                    outcomes[f"KeyError {exc}"] += 1
                client._by_id.clear()  # ask the registry every time, not the cache
            try:
                if (await http.get(health)).status_code == httpx.codes.OK and outcomes["right"]:
                    return outcomes
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    return outcomes


async def test_schemas_survive_a_registry_restart(url, settings, services, unique_topic):
    schemas = {}
    for name, load in sorted(SCHEMAS.items()):
        schema = load()
        schema["doc"] = f"{schema.get('doc', '')} [restart test {uuid.uuid4().hex}]"
        schemas[name] = schema
    subjects = {name: f"{unique_topic}-{name}-value" for name in schemas}

    ids = {
        "ztf": await AsyncSchemaRegistryClient(url).register(
            subjects["ztf"], AvroSchema(schemas["ztf"])
        )
    }
    with confluent(url) as client:
        ids["lsst"] = client.register_schema(
            subjects["lsst"], Schema(json.dumps(schemas["lsst"]), "AVRO")
        )
    assert ids["ztf"] != ids["lsst"]

    old_pid = services.pid(REGISTRY_SERVICE)
    assert old_pid is not None
    try:
        assert await asyncio.to_thread(services.stop, REGISTRY_SERVICE)
        assert services.pid(REGISTRY_SERVICE) is None
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/subjects", timeout=5.0)
    finally:
        # Always bring the registry back: the other integration tests need it.
        registry = services.registry("local")
        await asyncio.to_thread(services.start, registry)
        outcomes = await ask_while_starting(url, ids["ztf"], subjects["ztf"], schemas["ztf"])
        await asyncio.to_thread(services.wait_ready, [registry])
        await wait_storage_ready(url, settings.startup_timeout)
    # While it loads its journal, our client never takes a 404 or 409 for a verdict: the
    # answer is right, or an outage (503) that callers retry.
    assert set(outcomes) <= {"right", "unreachable", "not ready (503)"}, outcomes
    assert outcomes["right"] >= 1
    new_pid = services.pid(REGISTRY_SERVICE)
    assert new_pid is not None and new_pid != old_pid

    for name, schema in schemas.items():
        expected = canonical(schema)
        by_id = await AsyncSchemaRegistryClient(url).get_by_id(ids[name])
        assert by_id is not None and canonical(by_id.raw_schema) == expected
        latest = await AsyncSchemaRegistryClient(url).get_schema(subjects[name])
        assert latest is not None and (latest.schema_id, latest.version) == (ids[name], 1)
        assert canonical(latest.schema.raw_schema) == expected
        with confluent(url) as client:
            assert canonical(client.get_schema(ids[name]).schema_str) == expected
            latest_c = client.get_latest_version(subjects[name])
            assert (latest_c.schema_id, latest_c.version) == (ids[name], 1)
            assert canonical(latest_c.schema.schema_str) == expected
            assert client.get_versions(subjects[name]) == [1]
