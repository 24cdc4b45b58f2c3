"""The gateway app: what it registers, and its agent filling the schema ID table."""

import asyncio
import json

import pytest

from agents.gateway import build
from brokerapp.model.settings import load_settings
from brokerapp.runtime.mirror import Mirror

from .harness import prepare, run_agent


@pytest.fixture
def app(tmp_path):
    app = build(load_settings(home=tmp_path, store="memory://", app_prefix="unit"))
    app.finalize()
    app.flow_control.resume()
    return app


def test_gateway_registers_one_agent_one_table_and_the_mirror(app):
    assert app.conf.id == "unit-gateway"
    assert set(app.agents) == {"record_schema_ids"}
    assert set(app.tables) == {"schema_ids"}
    assert app.tables["schema_ids"].changelog_topic.get_topic_name() == (
        "unit-gateway-schema_ids-changelog"
    )
    assert [type(s) for s in app._extra_services] == [Mirror]
    assert app.conf.web_port == load_settings().gateway_web_port
    assert app.conf.web_bind == "127.0.0.1"


def test_module_reads_settings_when_faust_asks_for_its_app_not_at_import(monkeypatch, tmp_path):
    import importlib

    import agents.gateway as module

    module = importlib.reload(module)
    assert "app" not in vars(module)
    monkeypatch.setenv("BROKER_ALERTS_TOPIC", "alerts-from-env")
    monkeypatch.setenv("BROKER_APP_PREFIX", "envprefix")
    monkeypatch.setenv("BROKER_HOME", str(tmp_path))
    assert module.app.conf.id == "envprefix-gateway"
    assert module.app.mirror.settings.alerts_topic == "alerts-from-env"
    assert vars(module)["app"] is module.app


async def test_learned_pairs_land_in_the_table(app):
    table = app.tables["schema_ids"]
    agent = app.agents["record_schema_ids"]
    pair = {"local": 7, "schema": '{"type": "record", "name": "x", "fields": []}'}
    async with agent.test_context() as ctx:
        await ctx.put(key="confluent:900", value=pair)
        await ctx.put(key="inline:abc", value={"local": 8})
        await ctx.put(key="confluent:900", value={**pair, "local": 9})
    assert table["confluent:900"] == {**pair, "local": 9}
    assert table["inline:abc"] == {"local": 8}


async def test_a_pair_the_mirror_learns_is_sent_through_its_topic_into_the_table(tmp_path):
    """The mirror's ``learn`` sends the pair and returns once the agent has stored it.

    Kafka between the two is the capturing producer: what ``learn`` sends to the compacted
    ``<app_prefix>-gateway-schema-ids`` topic is handed to the agent as Faust would read it
    (``str`` key, JSON value); the table's changelog is what a restarted gateway reads back.
    """
    app = build(load_settings(home=tmp_path, store="memory://", app_prefix="unit"))
    sent = prepare(app)
    pair = {"local": 7, "schema": '{"type": "record", "name": "x", "fields": []}'}
    async with run_agent(app, "record_schema_ids") as feed:
        learning = asyncio.ensure_future(app.mirror.resolver.learn("confluent:900", pair))
        async with asyncio.timeout(5):
            while not sent.on("unit-gateway-schema-ids"):
                await asyncio.sleep(0.001)
        (message,) = sent.on("unit-gateway-schema-ids")
        assert (message.key, json.loads(message.value)) == (b"confluent:900", pair)
        assert not learning.done()  # it waits for the table
        await feed.put(json.loads(message.value), key=message.key.decode())
        async with asyncio.timeout(5):
            await learning
    assert app.tables["schema_ids"]["confluent:900"] == pair
    await sent.flush()
    (changelog,) = sent.on("unit-gateway-schema_ids-changelog")
    assert (json.loads(changelog.key), json.loads(changelog.value)) == ("confluent:900", pair)
