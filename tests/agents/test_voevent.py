"""The voevent worker in memory: packets of AnnotatedAlerts and crossmatch records.

Each packet is checked against the VOEvent 2.0 schema with lxml directly (the XSD Comet
ships), and its position, time and annotation against the raw sample fields. The VTP
broadcaster runs in ``tests/integration/test_notify.py`` with a real Comet subscriber.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import comet
from lxml import etree

from agents.voevent import build

from .harness import header, prepare, run_agent
from .notify_inputs import MJD_OFFSET, feed_inputs, nonsolar_ztf

NS = {"voe": "http://www.ivoa.net/xml/VOEvent/v2.0"}
XSD = etree.XMLSchema(etree.parse(str(Path(comet.__path__[0]) / "schema" / "VOEvent-v2.0.xsd")))


async def test_one_schema_valid_packet_per_annotated_alert_bad_input_dead_lettered(
    settings, registry
):
    settings = settings.model_copy(update={"voevent_authority": "test.example.org"})
    ztf = nonsolar_ztf(2)
    app = build(settings)
    sent = prepare(app)
    async with run_agent(app, "process", settings.annotated_alerts_topic) as feed:
        await feed_inputs(feed, settings, registry, annotated=ztf, crossmatched=ztf[:1])

    packets = sent.on(settings.voevents_topic)
    assert len(packets) == 3  # two watchlist hits, one crossmatch; the Annotation skipped
    kinds = []
    for message, sample in zip(packets, [ztf[0], ztf[1], ztf[0]], strict=True):
        doc = etree.fromstring(message.value)
        assert XSD.validate(doc), XSD.error_log
        c = sample.record["candidate"]
        kind = "watchlist" if len(kinds) < 2 else "crossmatch"
        kinds.append(kind)
        assert doc.get("ivorn") == f"ivo://test.example.org/alerts#{kind}-{c['candid']}"
        assert header(message, "ivorn") == doc.get("ivorn").encode()
        pos = doc.find(".//Position2D/Value2")
        assert float(pos.findtext("C1")) == c["ra"]
        assert float(pos.findtext("C2")) == c["dec"]
        when = datetime.fromisoformat(doc.findtext(".//ISOTime")).replace(tzinfo=UTC)
        expected = datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=c["jd"] - MJD_OFFSET)
        assert abs((when - expected).total_seconds()) < 1e-3
        params = {p.get("name"): p.get("value") for p in doc.find("What").iter("Param")}
        assert params["alert_id"] == str(c["candid"])
        assert params["object_id"] == sample.record["objectId"]
        assert params["entry"] == ("SN-candidate" if kind == "watchlist" else "7")
        ref = doc.find("What/Reference")
        assert ref.get("uri").endswith(f"/ztf/{c['candid']}")
    dead = sent.on(f"{settings.topic_prefix}voevent-deadletter")
    assert len(dead) == 2
    assert app.status()["written"] == 3
