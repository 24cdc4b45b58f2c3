"""The filters agents in memory: select and re-key by visit, then at most 20 per visit.

Both agents run their real stream code in ``test_context()``: ``select`` on the sample alerts
(framed as the gateway frames them, schemas from a dict-backed stand-in for the registry, a
server: ``tests/integration/test_branches.py`` runs the worker on the real one), then
``limit`` on what ``select`` sent to the by-visit topic, its windowed ``visit_counts`` table
in memory. The two visits of the LSST samples are interleaved, as alerts from several
partitions are.

Expected values are written from the raw fields with the signal-to-noise ratio the filters
document: LSST ``psfFlux / psfFluxErr``; ZTF ``1.0857 / sigmapsf``, negative when
``isdiffpos`` is ``"f"``. ``Filter001`` keeps S/N >= 3 and ``Filter002`` S/N >= 5, each at
most 20 alerts per visit (ZTF's visit is the image's ``pid``).
"""

from collections import Counter
from itertools import zip_longest

from agents.filters import build

from .harness import header, prepare, run_agent, samples

T0 = 1_700_000_000.0
MIN_SNR = {"Filter001": 3.0, "Filter002": 5.0}
LIMIT = 20


def snr(sample):
    if sample.survey == "lsst":
        source = sample.record["diaSource"]
        return source["psfFlux"] / source["psfFluxErr"]
    candidate = sample.record["candidate"]
    sign = -1.0 if candidate["isdiffpos"] in ("f", "0") else 1.0
    return sign * 1.0857 / candidate["sigmapsf"]


def visit(sample):
    if sample.survey == "lsst":
        return f"lsst:{sample.record['diaSource']['visit']}"
    return f"ztf:{sample.record['candidate']['pid']}"


def interleaved():
    lsst = samples("lsst")
    first = [s for s in lsst if s.record["diaSource"]["visit"] == 2025090500225]
    second = [s for s in lsst if s.record["diaSource"]["visit"] == 2025090500226]
    mixed = [s for pair in zip_longest(second, first) for s in pair if s is not None]
    return mixed + samples("ztf")


async def test_select_then_limit_sends_at_most_20_alerts_per_visit_and_filter(settings, registry):
    app = build(settings.model_copy(update={"filters": [1, 2]}))
    sent = prepare(app)
    alerts = interleaved()
    values = {}
    async with run_agent(app, "select") as feed:
        for i, sample in enumerate(alerts):
            value = registry.frame_sample(sample)
            values[value] = sample
            key = str(i).encode()
            await feed.put(value, key=key, headers=[("origin-topic", b"up")], timestamp=T0 + i)

    by_visit = sent.on("filters-by-visit")
    passing = [s for s in alerts if snr(s) >= MIN_SNR["Filter001"]]
    assert len(passing) == 19 + 28 + 12  # LSST visits ...225 and ...226, ZTF positives
    assert [values[m.value] for m in by_visit] == passing  # bytes unchanged, in order
    for message in by_visit:
        sample = values[message.value]
        assert message.key == visit(sample).encode()
        names = [n for n, low in MIN_SNR.items() if snr(sample) >= low]
        assert header(message, "filters") == ",".join(names).encode()
        assert header(message, "origin-topic") == b"up"
        assert (
            header(message, "alerts-timestamp")
            == str(int((T0 + alerts.index(sample)) * 1000)).encode()
        )

    async with run_agent(app, "limit") as feed:
        for message in by_visit:
            await feed.put_sent(message)

    for name, low in MIN_SNR.items():
        expected, counts = [], Counter()
        for sample in alerts:
            if snr(sample) >= low and counts[visit(sample)] < LIMIT:
                counts[visit(sample)] += 1
                expected.append(sample)
        got = [values[m.value] for m in sent.on(name)]
        assert got == expected, name  # the first 20 of each visit, in arrival order
        assert max(Counter(visit(s) for s in got).values()) == LIMIT
    assert Counter(visit(values[m.value]) for m in sent.on("Filter001"))["lsst:2025090500226"] == 20
    status = app.status()["filters"]
    assert status["Filter001"]["capped"] == 28 - 20
    assert sent.created["Filter001"]["config"]["message.timestamp.type"] == "LogAppendTime"


async def test_no_filter_passing_sends_nothing(settings, registry):
    app = build(settings.model_copy(update={"filters": [1]}))
    sent = prepare(app)
    negative = [s for s in samples("lsst") if snr(s) < 0]
    assert len(negative) == 3
    async with run_agent(app, "select") as feed:
        for sample in negative:
            await feed.put(registry.frame_sample(sample), key=b"k")
    assert sent.topics() == set()
    assert app.status()["selected"] == 0
