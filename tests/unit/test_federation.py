"""Registry federation's document and conflict rules (brokerapp.domain.federation), plain dicts.

Expected fingerprints are computed here from fastavro's Parsing Canonical Form and hashlib,
not by the code under test.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json

import pytest
from fastavro.schema import to_parsing_canonical_form

from brokerapp.domain.federation import (
    EXPORT_FORMAT,
    FederationError,
    build_export,
    plan_import,
    read_export,
)

ALERT_A = {
    "type": "record",
    "name": "alert",
    "namespace": "test",
    "fields": [{"name": "objectId", "type": "string"}, {"name": "mag", "type": "float"}],
}
ALERT_B = {
    "type": "record",
    "name": "alert",
    "namespace": "test",
    "fields": [{"name": "objectId", "type": "string"}, {"name": "flux", "type": "double"}],
}


def sha(schema: dict) -> str:
    return hashlib.sha256(to_parsing_canonical_form(schema).encode()).hexdigest()


def text(schema: dict) -> str:
    return json.dumps(schema)


def example_document() -> dict:
    table = {
        "confluent:701": {"local": 3, "schema": text(ALERT_A)},
        "inline:abcd": {"local": 4},
    }
    return build_export(table, {4: text(ALERT_B)}, {"alerts_topic": "alerts"})


def test_export_holds_the_map_the_schemas_and_their_fingerprints():
    document = example_document()
    assert document["format"] == EXPORT_FORMAT
    assert document["ids"] == {"confluent:701": 3, "inline:abcd": 4}
    assert document["schemas"] == {
        "3": {"fingerprint": sha(ALERT_A), "schema": text(ALERT_A)},
        "4": {"fingerprint": sha(ALERT_B), "schema": text(ALERT_B)},
    }
    assert document["site"] == {"alerts_topic": "alerts"}
    # JSON round trip: the document is plain JSON.
    assert json.loads(json.dumps(document)) == document


def test_export_without_a_schema_text_is_refused():
    with pytest.raises(FederationError, match="no schema text for local ID 4"):
        build_export({"inline:abcd": {"local": 4}}, {}, {})


def test_read_export_returns_schemas_by_exported_id():
    schemas = read_export(example_document())
    assert sorted(schemas) == [3, 4]
    assert (schemas[3].local_id, schemas[3].fingerprint) == (3, sha(ALERT_A))
    assert json.loads(schemas[4].schema) == ALERT_B


@pytest.mark.parametrize(
    "spoil,field",
    [
        (lambda d: d.update(format="other/1"), "format"),
        (lambda d: d.pop("ids"), "ids"),
        (lambda d: d.update(schemas=[]), "schemas"),
        (lambda d: d["schemas"]["3"].update(fingerprint="00" * 32), "schemas.3.fingerprint"),
        (lambda d: d["schemas"]["3"].update(schema=text(ALERT_B)), "schemas.3.fingerprint"),
        (lambda d: d["schemas"]["3"].pop("schema"), "schemas.3.schema"),
        (lambda d: d["ids"].update({"confluent:9": 99}), "ids.confluent:9"),
        (lambda d: d["ids"].update({"confluent:9": -1}), "ids.confluent:9"),
        (lambda d: d["schemas"].update(x=d["schemas"]["3"]), "schemas.x"),
    ],
)
def test_a_broken_document_is_refused_naming_the_field(spoil, field):
    document = example_document()
    spoil(document)
    with pytest.raises(FederationError) as caught:
        read_export(document)
    assert str(caught.value).startswith(f"{field}:")


def test_import_into_an_empty_table_registers_everything():
    plan = plan_import(read_export(example_document()), {})
    assert [s.local_id for s in plan.register] == [3, 4]
    assert plan.reused == {}


def test_an_id_known_with_the_same_schema_is_reused():
    # Same schema, other JSON spelling (a doc added, keys reordered): same fingerprint.
    respelled = copy.deepcopy(ALERT_A)
    respelled["doc"] = "the same schema"
    table = {"confluent:3": {"local": 57, "schema": json.dumps(respelled, sort_keys=True)}}
    plan = plan_import(read_export(example_document()), table)
    assert [s.local_id for s in plan.register] == [4]
    assert plan.reused == {3: 57}


def test_an_id_known_with_another_schema_is_a_conflict_naming_it():
    table = {
        "confluent:3": {"local": 57, "schema": text(ALERT_B)},
        "confluent:4": {"local": 58, "schema": text(ALERT_A)},
    }
    with pytest.raises(FederationError) as caught:
        plan_import(read_export(example_document()), table)
    message = str(caught.value)
    assert "schema ID 3" in message and "schema ID 4" in message
    assert sha(ALERT_A) in message and sha(ALERT_B) in message


async def test_a_pair_preloaded_from_the_id_topic_resolves_with_no_registry_call():
    from pathlib import Path

    import fastavro

    from brokerapp.adapters.registry import RegistryClient
    from brokerapp.runtime.mirror import SchemaResolver

    path = sorted((Path(__file__).parents[1] / "data" / "ztf").glob("*.avro"))[0]
    with path.open("rb") as fo:
        reader = fastavro.reader(fo)
        schema_text = reader.metadata["avro.schema"]
        record = next(reader)
    nowhere = "http://127.0.0.1:9/apis/ccompat/v7"
    learned = []

    async def learn(key, value):
        learned.append(key)

    async with RegistryClient(nowhere) as upstream, RegistryClient(nowhere) as local:
        resolver = SchemaResolver(upstream, local, "s-value", {}, learn)
        resolver.preload({"confluent:41": {"local": 7, "schema": schema_text}})
        assert resolver.load() == 1
        resolved = await resolver.confluent(41)
    assert resolved.local_id == 7
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(json.loads(schema_text)), record)
    assert resolved.key_of(body.getvalue()) == record["objectId"].encode()
    assert resolver.calls == {} and learned == []
