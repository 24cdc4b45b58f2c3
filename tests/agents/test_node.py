"""The generic processing node in memory: a chain file's cut and split, and an edit of it.

The node's ``process`` agent runs its real stream code in ``test_context()`` with a chain
written by the test (``magnitude_cut`` then ``solar_system``) on the sample alerts, framed as
the gateway frames them, with schemas from a dict-backed stand-in for the registry (a server:
``tests/integration/test_branches.py`` runs nodes on the real one). Expected routing is
written from raw fields: ZTF ``candidate.magpsf``; LSST the AB magnitude of a positive
``diaSource.psfFlux`` [nJy], ``-2.5 log10(flux) + 31.4`` (none for a non-positive flux);
solar-system membership as in :mod:`harness`.
"""

import asyncio
import math
import os

from agents.node import build

from .harness import is_solar, object_key, prepare, run_agent, samples


def magnitude(sample):
    if sample.survey == "ztf":
        return sample.record["candidate"]["magpsf"]
    flux = sample.record["diaSource"]["psfFlux"]
    return -2.5 * math.log10(flux) + 31.4 if flux > 0 else None


def write_chain(path, max_mag):
    text = (
        'name = "cut"\n'
        f"[[processor]]\nuse = 'magnitude_cut'\nmax_mag = {max_mag}\n"
        "[[processor]]\nuse = 'solar_system'\n"
        "solar_stream = 'bright-solar'\nnonsolar_stream = 'bright'\n"
    )
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, path)  # atomically, as the chain docs ask


def expected(alerts, max_mag):
    bright = [s for s in alerts if magnitude(s) is not None and magnitude(s) <= max_mag]
    return [s for s in bright if is_solar(s)], [s for s in bright if not is_solar(s)]


async def test_the_chain_drops_faint_alerts_and_splits_the_rest(settings, registry, tmp_path):
    chain = tmp_path / "cut.toml"
    write_chain(chain, 18.0)
    # Whole bytes forwarded (lean streams off): the lean bytes are ssfilter's own test.
    app = build(
        settings.model_copy(update={"node_name": "cut", "node_chain": chain, "lean_streams": False})
    )
    sent = prepare(app)
    alerts = samples("ztf") + samples("lsst")
    values = {}
    async with run_agent(app, "process") as feed:
        for sample in alerts:
            value = registry.frame_sample(sample)
            values[value] = sample
            await feed.put(value, key=object_key(sample))

    solar, nonsolar = expected(alerts, 18.0)
    assert (len(solar), len(nonsolar)) == (3, 3)  # ZTF magpsf <= 18; no LSST alert is as bright
    assert [values[m.value] for m in sent.on("cut-bright-solar")] == solar
    assert [values[m.value] for m in sent.on("cut-bright")] == nonsolar
    assert [m.key for m in sent.on("cut-bright")] == [object_key(s) for s in nonsolar]
    assert sent.topics() == {"cut-bright-solar", "cut-bright"}
    assert app.status()["outcomes"] == {"passed": 6, "dropped": len(alerts) - 6}


async def test_an_edited_chain_applies_to_the_next_alerts(settings, registry, tmp_path):
    chain = tmp_path / "cut.toml"
    write_chain(chain, 18.0)
    update = {"node_name": "cut", "node_chain": chain, "chain_poll_seconds": 0.01}
    app = build(settings.model_copy(update=update))
    sent = prepare(app)
    alerts = samples("ztf")
    async with run_agent(app, "process") as feed:
        for sample in alerts:
            await feed.put(registry.frame_sample(sample), key=object_key(sample))
        await feed.drain()
        write_chain(chain, 21.0)
        await asyncio.sleep(0.05)  # past the poll interval
        for sample in alerts:
            await feed.put(registry.frame_sample(sample), key=object_key(sample))

    first_solar, first_nonsolar = expected(alerts, 18.0)
    then_solar, then_nonsolar = expected(alerts, 21.0)
    assert len(then_solar) + len(then_nonsolar) == len(alerts)  # every ZTF sample is <= 21
    assert len(sent.on("cut-bright")) == len(first_nonsolar) + len(then_nonsolar)
    assert len(sent.on("cut-bright-solar")) == len(first_solar) + len(then_solar)
    assert app.status()["chain"]["reloads"] >= 1
