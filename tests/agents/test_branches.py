"""The fast branches' apps: what each registers, under which stable names."""

from pathlib import Path

import pytest

from brokerapp.model.settings import load_settings

CHAINS = Path(__file__).parents[2] / "deploy" / "chains"


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        home=tmp_path,
        store="memory://",
        app_prefix="unit",
        ssfilter_chain=CHAINS / "ssfilter.toml",
        node_chain=CHAINS / "example.toml",
    )


def test_ssfilter_is_one_chain_agent_routing_to_the_two_topics(settings):
    from agents.ssfilter import build

    app = build(settings)
    assert app.conf.id == "unit-ssfilter"
    # No Faust agent: one batch loop, in the app's consumer group, reading the buffer.
    assert set(app.agents) == set()
    assert set(app.batch_loops) == {"process"}
    loop = app.batch_loops["process"]
    assert (loop.group_id, loop.topics) == ("unit-ssfilter", ["alerts"])
    assert loop.transactional_id == "unit-ssfilter-1"
    assert set(app.tables) == set()
    assert app.conf.web_port == settings.ssfilter_web_port
    status = app.status()
    assert status["streams"] == {"solar": "alerts-solar", "nonsolar": "alerts-nonsolar"}
    assert status["chain"]["processors"] == ["solar_system"]
    assert status["source"] == "alerts"


def test_generic_node_takes_its_name_and_chain_from_settings(settings):
    from agents.node import build

    app = build(settings.model_copy(update={"node_name": "bright"}))
    assert app.conf.id == "unit-bright"
    assert set(app.agents) == set()
    assert set(app.batch_loops) == {"process"}
    assert app.status()["chain"]["processors"] == ["magnitude_cut", "solar_system"]


def test_filters_app_selects_then_limits_per_visit_in_a_windowed_table(settings):
    from agents.filters import build

    app = build(settings.model_copy(update={"filters": [1, 7, 100]}))
    assert app.conf.id == "unit-filters"
    assert set(app.agents) == {"select", "limit"}
    assert set(app.tables) == {"visit_counts"}
    table = app.tables["visit_counts"]
    assert table.changelog_topic.get_topic_name() == "unit-filters-visit_counts-changelog"
    assert table.partitions == settings.alerts_partitions
    assert set(app.status()["filters"]) == {"Filter001", "Filter007", "Filter100"}


def test_each_branch_is_its_own_consumer_group(settings):
    from agents import (
        candidates,
        cassandra_sink,
        filters,
        gateway,
        mariadb_sink,
        node,
        objects,
        ssfilter,
        watchlist,
    )

    # (crossmatch loads its catalogue when built: its own test checks its ID and port)
    modules = (
        candidates,
        cassandra_sink,
        filters,
        gateway,
        mariadb_sink,
        node,
        objects,
        ssfilter,
        watchlist,
    )
    ids = {m.build(settings).conf.id for m in modules}
    assert len(ids) == len(modules)
    ports = {m.build(settings).conf.web_port for m in modules}
    assert len(ports) == len(modules)  # all can run on one host


def test_watchlist_app_matches_from_global_zone_tables_fed_by_a_control_agent(settings):
    from agents.watchlist import build

    app = build(settings)
    assert app.conf.id == "unit-watchlist"
    assert set(app.agents) == {"control", "match", "ss_match"}
    assert set(app.tables) == {"watchlists", "watchlist_zones", "ss_watchlist_objects"}
    for table in app.tables.values():
        assert table.is_global and table.partitions == 1
    assert app.status()["source"] == settings.watchlist_source_topic == "alerts-nonsolar"


def test_crossmatch_is_a_node_on_the_nonsolar_stream(settings, tmp_path):
    from agents.crossmatch import build

    catalogue = tmp_path / "cat.csv"
    catalogue.write_text("id,ra,dec,mag,kind\n1,10.0,-45.0,17.0,star\n")
    chain = tmp_path / "crossmatch.toml"
    chain.write_text(
        "[[processor]]\nuse = 'catalogue_match'\n"
        f"path = '{catalogue}'\nid_column = 'id'\nradius_arcsec = 2.0\n"
        "[[processor]]\nuse = 'emit_annotations'\n"
    )
    app = build(settings.model_copy(update={"crossmatch_chain": chain}))
    assert app.conf.id == "unit-crossmatch"
    assert set(app.agents) == set()
    assert app.batch_loops["process"].topics == ["alerts-nonsolar"]
    status = app.status()
    assert status["source"] == "alerts-nonsolar"
    assert status["chain"]["processors"] == ["catalogue_match", "emit_annotations"]
    assert status["streams"] == {"annotations": "annotations"}


def test_candidates_app_turns_both_streams_into_candidate_updates(settings):
    from agents.candidates import build

    app = build(settings)
    assert app.conf.id == "unit-candidates"
    assert set(app.agents) == set()
    assert app.batch_loops["convert"].topics == ["alerts-nonsolar", "alerts-solar"]
    assert set(app.tables) == set()
    assert app.conf.web_port == settings.candidates_web_port
    status = app.status()
    assert status["source"] == "alerts-nonsolar"
    assert status["solar_source"] == "alerts-solar"
    assert status["outputs"] == {"nonsolar": "candidates", "solar": "ss-candidates"}


def test_objects_app_keeps_history_in_a_table_partitioned_like_candidates(settings):
    from agents.objects import build

    app = build(settings)
    assert app.conf.id == "unit-objects"
    assert set(app.agents) == {"update"}
    assert set(app.tables) == {"object_history"}
    table = app.tables["object_history"]
    assert table.changelog_topic.get_topic_name() == "unit-objects-object_history-changelog"
    assert table.partitions == settings.alerts_partitions
    assert app.status()["source"] == "candidates"
    assert app.status()["outputs"] == ["candidate-object-updates", "objects"]


@pytest.mark.parametrize("kind", ["mariadb", "cassandra"])
def test_each_store_has_a_sink_with_one_agent_per_table(settings, kind):
    import importlib

    module = importlib.import_module(f"agents.{kind}_sink")
    app = module.build(settings)
    assert app.conf.id == f"unit-{kind}-sink"
    assert set(app.agents) == set()
    loop = app.batch_loops["sink"]
    assert loop.topics == ["candidates", "ss-candidates", "annotations", "objects"]
    assert loop.transactional is False  # its output is the store
    topics = {"candidates", "ss_candidates", "annotations", "objects"}
    assert set(app.status()["tables"]) == set(topics)
