"""The candidates agents in memory: a CandidateUpdate per alert, keyed by its object.

Both agents (``nonsolar`` and ``solar``) run their real stream code in ``test_context()`` on
the sample alerts of their stream (the split made from raw fields), framed as the gateway
frames them, with schemas from a dict-backed stand-in for the registry (a server:
``tests/integration/test_objects_sinks.py`` runs the worker on the real one). Every expected
CandidateUpdate is written from the alert's raw fields read with plain fastavro
(:func:`harness.raw_candidate_update`), never by the code under test.
"""

import math

import pytest

from agents.candidates import build

from .harness import (
    close_to,
    header,
    is_solar,
    object_key,
    prepare,
    raw_candidate_update,
    run_agent,
    samples,
)

APPENDED_S = 1_700_000_000.25
"""Append time of every input alert (seconds)."""


@pytest.mark.parametrize(
    ("source", "solar", "topic"),
    [("alerts-nonsolar", False, "candidates"), ("alerts-solar", True, "ss-candidates")],
)
async def test_every_alert_becomes_the_candidate_update_of_its_raw_fields(
    settings, registry, source, solar, topic
):
    app = build(settings)
    sent = prepare(app)
    alerts = [s for s in samples("ztf") + samples("lsst") if is_solar(s) == solar]
    async with run_agent(app, "convert", topic=source) as feed:
        for sample in alerts:
            value = registry.frame_sample(sample)
            await feed.put(value, key=object_key(sample), timestamp=APPENDED_S)

    updates = sent.on(topic)
    assert len(updates) == len(alerts) == (13 if solar else 55)
    for sample, message in zip(alerts, updates, strict=True):
        expected = raw_candidate_update(sample, APPENDED_S * 1000.0)
        close_to(message.json(), expected, where=sample.path.name)
        owner = expected["ss_name"] if solar else expected["object_id"]
        assert message.key == owner.encode()
    assert sent.topics() == {topic}  # nothing dead-lettered


async def test_the_previous_detections_of_a_ztf_alert_are_its_prv_candidates_with_an_id(
    settings, registry
):
    app = build(settings)
    sent = prepare(app)
    sample = next(s for s in samples("ztf") if s.path.name.startswith("2019_01_10"))
    async with run_agent(app, "convert") as feed:
        await feed.put(registry.frame_sample(sample), key=b"ZTF17aaacxxf")
    (message,) = sent.on("candidates")
    update = message.json()
    prv = sample.record["prv_candidates"]
    assert len(prv) == 28  # detections and upper limits
    ids = [p["candid"] for p in prv if p["candid"] is not None]
    assert [d["candidate_id"] for d in update["previous"]] == ids
    assert update["candidate"]["candidate_id"] == 739260766315010006
    assert update["object_id"] == "ZTF17aaacxxf"
    assert message.key == b"ZTF17aaacxxf"


async def test_a_nan_position_is_dead_lettered_with_its_reason_and_the_rest_goes_on(
    settings, registry
):
    app = build(settings)
    sent = prepare(app)
    broken, good = [s for s in samples("lsst") if not is_solar(s)][:2]
    broken.record["diaSource"]["ra"] = math.nan
    bad_value = registry.frame_sample(broken)
    async with run_agent(app, "convert") as feed:
        await feed.put(bad_value, key=object_key(broken), headers=[("origin-topic", b"up")])
        await feed.put(registry.frame_sample(good), key=object_key(good))

    (dead,) = sent.on("candidates-deadletter")
    assert (dead.key, dead.value) == (object_key(broken), bad_value)  # unchanged
    reason = header(dead, "error-reason").decode()
    # The reason names the detection and the field.
    assert reason.startswith(f"detection {broken.record['diaSourceId']}: ra ")
    assert "not a position" in reason
    assert header(dead, "origin-topic") == b"alerts-nonsolar"  # where the agent read it
    assert header(dead, "origin-offset") == b"0"
    assert [m.key for m in sent.on("candidates")] == [object_key(good)]
    assert app.status()["deadlettered_by_kind"] == {"CandidateError": 1}


async def test_a_non_solar_alert_of_no_object_is_dead_lettered(settings, registry):
    app = build(settings)
    sent = prepare(app)
    sample = next(s for s in samples("lsst") if not is_solar(s))
    sample.record["diaSource"]["diaObjectId"] = 0  # Rubin's "no object"
    sample.record["diaObject"] = None
    value = registry.frame_sample(sample)
    async with run_agent(app, "convert") as feed:
        await feed.put(value, key=b"k")
    (dead,) = sent.on("candidates-deadletter")
    assert dead.value == value
    assert header(dead, "error-reason") == (
        f"alert {sample.record['diaSourceId']} names no object".encode()
    )
    assert sent.on("candidates") == []
