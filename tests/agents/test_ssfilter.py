"""The ssfilter agent in memory: every sample alert in exactly one of the two streams.

The agent's real stream code runs in ``test_context()`` on the 68 sample alerts, framed as
the gateway frames them; schemas come from a dict-backed stand-in for the registry (a server:
``tests/integration/test_branches.py`` runs the worker against the real one). Expected routing
is read from the raw fields with plain fastavro: ZTF ``candidate.ssnamenr`` not ``"null"``,
LSST ``diaSource.ssObjectId`` not 0.
"""

import io
import json
from collections import Counter

import fastavro

from agents.ssfilter import build
from brokerapp.wire.lean import CUTOUTS_SCHEMA

from .harness import header, is_solar, object_key, prepare, run_agent, samples


async def test_each_alert_lands_once_in_its_stream_bytes_key_and_headers_unchanged(
    settings, registry
):
    app = build(settings.model_copy(update={"lean_streams": False}))
    sent = prepare(app)
    alerts = samples("ztf") + samples("lsst")
    inputs = []
    async with run_agent(app, "process") as feed:
        for i, sample in enumerate(alerts):
            value = registry.frame_sample(sample)
            headers = [("origin-topic", b"ztf_20190110_programid1"), ("n", str(i).encode())]
            inputs.append((object_key(sample), value, is_solar(sample)))
            await feed.put(value, key=object_key(sample), headers=headers)

    solar, nonsolar = sent.on("alerts-solar"), sent.on("alerts-nonsolar")
    assert len(solar) == 11 + 2  # 11 of the 18 ZTF samples, 2 of the 50 LSST ones
    assert len(nonsolar) == 7 + 48
    assert [(m.key, m.value) for m in solar] == [(k, v) for k, v, s in inputs if s]
    assert [(m.key, m.value) for m in nonsolar] == [(k, v) for k, v, s in inputs if not s]
    for message in solar + nonsolar:
        assert header(message, "origin-topic") == b"ztf_20190110_programid1"
    numbers = Counter(header(m, "n") for m in solar + nonsolar)
    assert numbers == Counter(str(i).encode() for i in range(len(alerts)))
    assert sent.topics() == {"alerts-solar", "alerts-nonsolar"}  # no dead letters
    # Each distinct writer schema (4 among the samples) fetched once, then cached.
    assert sorted(registry.fetches) == sorted(registry.schemas) and len(registry.schemas) == 4
    for topic in ("alerts-solar", "alerts-nonsolar"):
        assert sent.created[topic]["config"]["message.timestamp.type"] == "LogAppendTime"
    status = app.status()
    assert status["received"] == len(alerts)
    assert status["sent"] == {"alerts-solar": 13, "alerts-nonsolar": 55}


async def test_an_undecodable_message_is_dead_lettered_unchanged_with_its_reason(
    settings, registry
):
    app = build(settings.model_copy(update={"lean_streams": False}))
    sent = prepare(app)
    sample = samples("ztf")[0]
    good = registry.frame_sample(sample)
    unknown_id = b"\x00\x00\x00\x03\xe7" + good[5:]  # schema ID 999: not registered
    async with run_agent(app, "process") as feed:
        await feed.put(b"not avro", key=b"k1")
        await feed.put(unknown_id, key=b"k2")
        await feed.put(good, key=b"k3")

    dead = sent.on("ssfilter-deadletter")
    assert [(m.key, m.value) for m in dead] == [(b"k1", b"not avro"), (b"k2", unknown_id)]
    assert header(dead[0], "error-mode") == b"confluent"
    assert b"unknown schema id" in header(dead[1], "error-reason").lower()
    assert header(dead[1], "error-schema-id") == b"999"
    assert header(dead[0], "origin-topic") == b"alerts"
    assert [header(m, "origin-offset") for m in dead] == [b"0", b"1"]
    assert [(m.key, m.value) for m in sent.on("alerts-nonsolar")] == [(b"k3", good)]


CUTOUT_FIELDS = {
    "ztf": ("cutoutScience", "cutoutTemplate", "cutoutDifference"),
    "lsst": ("cutoutDifference", "cutoutScience", "cutoutTemplate"),
}
"""The alerts' cutout fields, from the ZTF and LSST schema documents."""


async def test_lean_streams_carry_each_alert_without_its_cutouts_which_are_kept_once(
    settings, registry
):
    app = build(settings)  # lean_streams is the default
    sent = prepare(app)
    alerts = samples("ztf") + samples("lsst")
    async with run_agent(app, "process") as feed:
        for sample in alerts:
            await feed.put(registry.frame_sample(sample), key=object_key(sample))

    outputs = sent.on("alerts-solar") + sent.on("alerts-nonsolar")
    assert len(outputs) == len(alerts) and len(sent.on("cutouts")) == len(alerts)
    by_key = {}
    for message in outputs:
        by_key.setdefault(message.key, []).append(message)
    stamps = {}
    for message in sent.on("cutouts"):
        record = fastavro.schemaless_reader(
            io.BytesIO(message.value), fastavro.parse_schema(CUTOUTS_SCHEMA)
        )
        stamps[message.key] = record
    for sample in alerts:
        schema = fastavro.parse_schema(json.loads(sample.schema))
        lean = by_key[object_key(sample)].pop(0)
        assert lean.value[:5] == registry.frame_sample(sample)[:5]  # same schema ID
        decoded = fastavro.schemaless_reader(io.BytesIO(lean.value[5:]), schema)
        expected = dict(sample.record)
        fields = [f for f in CUTOUT_FIELDS[sample.survey] if f in expected]
        for name in fields:
            expected[name] = None
        assert decoded == expected, sample.path.name
        assert len(lean.value) < len(registry.frame_sample(sample))
        alert_id = (
            sample.record["candid"]
            if sample.survey == "ztf"
            else sample.record["diaSource"]["diaSourceId"]
        )
        kept = stamps[str(alert_id).encode()]
        for name in fields:
            raw = sample.record[name]
            raw = raw["stampData"] if isinstance(raw, dict) else raw
            kinds = {"cutoutScience": "science", "cutoutTemplate": "template"}
            kind = kinds.get(name, "difference")
            assert kept[kind] == raw, (sample.path.name, name)
    assert sent.created["cutouts"]["config"]["cleanup.policy"] == "compact,delete"


async def test_an_alert_without_any_stamp_sends_no_cutouts_record(settings, registry):
    app = build(settings)
    sent = prepare(app)
    stamped, bare = samples("ztf")[0], samples("lsst")[0]
    record = dict(bare.record)
    for name in CUTOUT_FIELDS["lsst"]:
        record[name] = None  # a simulated alert: no stamps at all
    async with run_agent(app, "process") as feed:
        await feed.put(registry.frame(bare.schema, record), key=object_key(bare))
        await feed.put(registry.frame_sample(stamped), key=object_key(stamped))

    assert len(sent.on("alerts-solar") + sent.on("alerts-nonsolar")) == 2
    assert [m.key for m in sent.on("cutouts")] == [str(stamped.record["candid"]).encode()]
