"""Stream descriptions: every output topic's validates; broken ones are refused by field;
an upstream's description file configures the gateway.

Validity is checked with ``jsonschema`` directly against the schema file shipped in the
repository, not only through the code under test; expected topic names and values come from
the settings, as a user reads them.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from brokerapp.model.settings import load_settings
from brokerapp.model.streams import DescriptionError, validate_description
from brokerapp.runtime.mirror import Mirror
from brokerapp.runtime.streams import describe_streams

SCHEMA_FILE = Path(__file__).parents[2] / "brokerapp" / "model" / "stream_description.schema.json"


def shipped_validator():
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def settings(tmp_path):
    return load_settings(home=tmp_path, filters=[1, 7], topic_prefix="p-")


def test_every_output_topic_has_a_valid_description(settings):
    documents = describe_streams(settings)
    validator = shipped_validator()
    for document in documents:
        assert list(validator.iter_errors(document)) == [], document["name"]
    topics = {d["kafka"]["topic"] for d in documents}
    assert topics == {
        "alerts",
        "alerts-solar",
        "alerts-nonsolar",
        "annotations",
        "annotated-alerts",
        "candidates",
        "ss-candidates",
        "candidate-object-updates",
        "objects",
        "cutouts",
        "voevents",
        "p-Filter001",
        "p-Filter007",
    }
    assert all(d["kafka"]["bootstrap"] == "127.0.0.1:9092" for d in documents)


def test_descriptions_say_what_the_settings_say(settings):
    by_name = {d["name"]: d for d in describe_streams(settings)}
    alerts = by_name["alerts"]
    assert alerts["retention"] == {"cleanup_policy": "delete", "ms": 7 * 24 * 3600 * 1000}
    assert alerts["partitioning"]["partitions"] == 12
    assert alerts["value"]["schema"] == {
        "type": "registry",
        "registry": "http://127.0.0.1:8081/apis/ccompat/v7",
        "subject": "alerts-value",
    }
    assert by_name["objects"]["retention"]["cleanup_policy"] == "compact"
    assert by_name["candidates"]["value"]["schema"]["type"] == "other"
    assert by_name["cutouts"]["value"]["schema"] == {
        "type": "json-file",
        "url": "http://127.0.0.1:6060/streams/schemas/cutouts_v1.avsc",
    }
    assert by_name["voevents"]["voevent"] == {
        "vtp": "tcp://127.0.0.1:8099",
        "template": "ivo://broker.example.org/alerts#{kind}-{alert_id}",
    }
    assert "voevent" not in alerts
    assert by_name["Filter007"]["key"]["content"] == "visit ID"


def test_published_endpoints_come_from_the_streams_settings(tmp_path):
    settings = load_settings(
        home=tmp_path,
        streams_bootstrap="kafka1.example.org:9094,kafka2.example.org:9094",
        streams_registry_url="https://registry.example.org/apis/ccompat/v7",
        streams_auth="urn:brokerapp:auth:sasl-ssl:scram-sha-512",
    )
    (alerts,) = describe_streams(settings, "alerts")
    assert alerts["kafka"]["bootstrap"] == "kafka1.example.org:9094,kafka2.example.org:9094"
    assert alerts["kafka"]["auth"] == "urn:brokerapp:auth:sasl-ssl:scram-sha-512"
    assert alerts["value"]["schema"]["registry"] == "https://registry.example.org/apis/ccompat/v7"


def test_per_watchlist_topics_are_described_by_a_pattern(tmp_path):
    settings = load_settings(home=tmp_path, watchlist_topics=True, topic_prefix="p.")
    (document,) = describe_streams(settings, "watchlist-topics")
    assert list(shipped_validator().iter_errors(document)) == []
    pattern = document["kafka"]["topic_pattern"]
    assert "topic" not in document["kafka"]
    assert re.match(pattern, "p.watchlist-w1") and not re.match(pattern, "pXwatchlist-w1")
    assert document["value"]["schema"]["subject"] == "annotated-alerts-value"
    assert "watchlist-topics" not in {d["name"] for d in describe_streams(load_settings())}


def test_one_stream_by_name_or_topic_and_an_unknown_one(settings):
    assert [d["name"] for d in describe_streams(settings, "p-Filter007")] == ["Filter007"]
    with pytest.raises(KeyError):
        describe_streams(settings, "no-such-stream")


def _spoil_voevent(d):
    d.pop("voevent")


BROKEN = {
    "value.schema.subject": ("alerts", lambda d: d["value"]["schema"].pop("subject")),
    "value.schema.url": ("cutouts", lambda d: d["value"]["schema"].pop("url")),
    "value.schema.type": ("alerts", lambda d: d["value"]["schema"].update(type="avsc")),
    "kafka.bootstrap": ("alerts", lambda d: d["kafka"].update(bootstrap="no port")),
    "kafka.auth": ("alerts", lambda d: d["kafka"].update(auth="SCRAM")),
    "retention.ms": ("alerts", lambda d: d["retention"].update(ms="7 days")),
    "voevent": ("voevents", _spoil_voevent),
    "voevent.vtp": ("voevents", lambda d: d["voevent"].update(vtp="127.0.0.1")),
    "partitioning.partitions": ("alerts", lambda d: d["partitioning"].update(partitions=0)),
    "key": ("alerts", lambda d: d.pop("key")),
    "value": ("voevents", lambda d: d.pop("value")),
}


@pytest.mark.parametrize("field,case", BROKEN.items(), ids=BROKEN.keys())
def test_a_broken_description_is_refused_with_the_field_named(settings, field, case):
    name, spoil = case
    (document,) = describe_streams(settings, name)
    broken = copy.deepcopy(document)
    spoil(broken)
    assert list(shipped_validator().iter_errors(broken)) != []  # the schema itself refuses it
    with pytest.raises(DescriptionError) as caught:
        validate_description(broken)
    assert str(caught.value).startswith(f"stream {name!r}: {field}: ")


def upstream_description(**kafka) -> dict:
    return {
        "format": "brokerapp.stream-description/1",
        "name": "lsst-alerts",
        "kafka": {
            "bootstrap": "usdf-alert-stream.example.org:9094",
            "auth": "urn:brokerapp:auth:sasl-ssl:scram-sha-512",
            **kafka,
        },
        "key": {"encoding": "none", "content": "no key"},
        "partitioning": {"by": "none", "partitioner": "round robin", "partitions": None},
        "retention": {"cleanup_policy": "delete", "ms": None},
        "value": {
            "encoding": "avro-confluent",
            "schema": {
                "type": "registry",
                "registry": "https://usdf-alert-schemas.example.org",
                "subject": "alert-packet",
            },
        },
    }


def test_the_gateway_is_configured_from_an_upstream_description(tmp_path, monkeypatch):
    path = tmp_path / "upstream.json"
    path.write_text(json.dumps(upstream_description(topic_pattern=r"^lsst-alerts-\d{8}$")))
    monkeypatch.setenv("BROKER_UPSTREAM_DESCRIPTION", str(path))
    settings = load_settings(home=tmp_path)
    assert settings.upstream_bootstrap == "usdf-alert-stream.example.org:9094"
    assert settings.gateway_topic_patterns == [r"^lsst-alerts-\d{8}$"]
    assert settings.upstream_registry_url == "https://usdf-alert-schemas.example.org"
    assert (settings.upstream_security_protocol, settings.upstream_sasl_mechanism) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )

    async def learn(_key, _value):
        return None

    mirror = Mirror(settings, {}, learn)
    assert mirror.pattern == r"(?:^lsst-alerts-\d{8}$)"
    assert mirror.upstream_registry.url == "https://usdf-alert-schemas.example.org"


def test_a_list_of_descriptions_gives_one_pattern_per_topic(tmp_path):
    path = tmp_path / "streams.json"
    documents = [upstream_description(topic="alerts.v1"), upstream_description(topic="b")]
    path.write_text(json.dumps(documents))
    settings = load_settings(home=tmp_path, upstream_description=path)
    assert settings.gateway_topic_patterns == [r"^alerts\.v1$", "^b$"]


def test_our_own_alerts_description_configures_a_following_gateway(tmp_path):
    ours = load_settings(home=tmp_path, streams_bootstrap="site-a.example.org:9092")
    path = tmp_path / "site-a.json"
    path.write_text(json.dumps(describe_streams(ours, "alerts")))
    follower = load_settings(home=tmp_path, upstream_description=path)
    assert follower.upstream_bootstrap == "site-a.example.org:9092"
    assert follower.gateway_topic_patterns == ["^alerts$"]
    assert follower.upstream_registry_url == ours.registry_url
    # Our local cluster is described as PLAINTEXT: no SASL, and no group prefix to keep.
    assert (follower.upstream_security_protocol, follower.upstream_group_prefix) == (
        "PLAINTEXT",
        "",
    )


@pytest.mark.parametrize(
    "document,field",
    [
        ({**upstream_description(topic="t"), "kafka": {"topic": "t"}}, "kafka.bootstrap"),
        (upstream_description(), "kafka"),  # neither topic nor topic_pattern
        ("not an object", "$"),
        ({"format": "brokerapp.stream-description/1"}, "name"),
    ],
)
def test_a_broken_upstream_description_stops_the_settings_naming_the_field(
    tmp_path, document, field
):
    path = tmp_path / "upstream.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError) as caught:
        load_settings(home=tmp_path, upstream_description=path)
    assert f"{path}: " in str(caught.value)
    assert f" {field}: " in str(caught.value)


def test_an_upstream_stream_without_a_registry_is_refused(tmp_path):
    document = upstream_description(topic="t")
    document["value"]["schema"] = {"type": "json-file", "url": "https://example.org/a.avsc"}
    path = tmp_path / "upstream.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError, match="value.schema.type is 'json-file'"):
        load_settings(home=tmp_path, upstream_description=path)


@pytest.mark.parametrize(
    ("urn", "expected"),
    [
        (
            "urn:brokerapp:auth:none",
            {"upstream_security_protocol": "PLAINTEXT", "upstream_group_prefix": ""},
        ),
        (
            "urn:brokerapp:auth:sasl-ssl:scram-sha-512",
            {"upstream_security_protocol": "SASL_SSL", "upstream_sasl_mechanism": "SCRAM-SHA-512"},
        ),
        ("urn:brokerapp:auth:ssl", {"upstream_security_protocol": "SSL"}),
    ],
)
def test_an_auth_urn_names_the_upstream_security(urn, expected):
    from brokerapp.model.streams import auth_settings

    assert auth_settings(urn) == expected


@pytest.mark.parametrize(
    "urn",
    ["urn:x", "urn:brokerapp:auth:sasl-ssl", "urn:brokerapp:auth:sasl-ssl:md5", "urn:other:a:b"],
)
def test_an_unknown_auth_urn_is_refused_with_the_field(urn):
    from brokerapp.model.streams import DescriptionError, auth_settings

    with pytest.raises(DescriptionError, match="kafka.auth"):
        auth_settings(urn)
