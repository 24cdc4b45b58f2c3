"""Monitoring: the workers' metric text, Prometheus's generated configuration, the alerting
rules (checked and unit-tested by Debian's ``promtool``) and the Grafana dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from brokerapp.model.settings import Settings
from brokerapp.runtime.metrics import METRICS, metrics_text, process_sample, summarise
from brokerapp.tools.services.monitoring import (
    RULES_FILE,
    prometheus_service,
    scrape_targets,
    write_prometheus_config,
)

DEPLOY = Path(__file__).parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "broker-dashboard.json"
RULES_TEST = DEPLOY / "prometheus" / "rules_test.yml"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: `apt-get install prometheus` (make install does)"
    return path


def test_a_workers_own_metrics_carry_its_branch_name_and_exact_counters():
    status = {
        "received": 12345678,
        "sent": {"alerts-solar": 3, "alerts-nonsolar": 4},
        "deadlettered": 2,
        "end_to_end": {"rate": 1.5, "p50_ms": 12.25, "p99_ms": 1800.5},
        "lag": 9,
    }
    text = metrics_text([summarise("ssfilter", "/ssfilter/", status)])
    assert 'broker_received_total{worker="ssfilter"} 12345678\n' in text
    assert 'broker_sent_total{worker="ssfilter"} 7\n' in text
    assert 'broker_deadlettered_total{worker="ssfilter"} 2\n' in text
    assert 'broker_lag{worker="ssfilter"} 9\n' in text
    assert 'broker_latency_ms{worker="ssfilter",quantile="0.99"} 1800.5\n' in text
    assert "# TYPE broker_received_total counter" in text
    # A branch has no store: the series is left out, not written as 0.
    assert "broker_store_available{" not in text


def test_a_label_value_is_escaped():
    text = metrics_text([summarise('odd"name\\', "/x/", {"received": 1})])
    assert 'broker_received_total{worker="odd\\"name\\\\"} 1\n' in text


def test_scrape_targets_are_every_worker_web_port_on_loopback():
    settings = Settings(ssfilter_web_port=7167, prometheus_extra_targets=["10.0.0.5:6069"])
    targets = scrape_targets(settings)
    assert "127.0.0.1:7167" in targets
    assert f"127.0.0.1:{settings.gateway_web_port}" in targets
    assert f"127.0.0.1:{settings.cassandra_sink_web_port}" in targets
    assert targets[-1] == "10.0.0.5:6069"
    assert len(targets) == len(set(targets)) == 14


def test_the_generated_configuration_passes_promtool(tmp_path):
    settings = Settings(prometheus_scrape_seconds=2)
    config = write_prometheus_config(settings, tmp_path)
    content = yaml.safe_load(config.read_text())
    assert content["rule_files"] == [str(RULES_FILE)]
    (job,) = content["scrape_configs"]
    assert job["job_name"] == "broker"
    assert job["file_sd_configs"][0]["files"] == [str(tmp_path / "targets" / "*.json")]
    groups = json.loads((tmp_path / "targets" / "workers.json").read_text())
    assert f"127.0.0.1:{settings.ssfilter_web_port}" in groups[0]["targets"]
    done = subprocess.run(
        [promtool(), "check", "config", str(config)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_binds_loopback_with_its_data_under_the_home(tmp_path):
    settings = Settings(prometheus_port=7190, prometheus_retention="2d")
    service = prometheus_service(settings, tmp_path)
    assert "--web.listen-address=127.0.0.1:7190" in service.command
    assert f"--storage.tsdb.path={tmp_path / 'monitoring' / 'data'}" in service.command
    assert "--storage.tsdb.retention.time=2d" in service.command
    assert service.port == 7190


def test_the_rules_pass_promtool_check():
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES_FILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_the_rules_pass_their_promtool_unit_tests():
    done = subprocess.run(
        [promtool(), "test", "rules", str(RULES_TEST)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_cover_lag_dead_letters_the_gateway_and_the_stores():
    rules = yaml.safe_load(RULES_FILE.read_text())["groups"][0]["rules"]
    names = {rule["alert"] for rule in rules}
    assert {
        "BrokerConsumerLag",
        "BrokerDeadLetterRate",
        "BrokerGatewayStalled",
        "BrokerStoreDown",
    } <= names
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert tested == names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"]]
    return queries


def test_every_dashboard_query_names_metrics_the_workers_export():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"] and all(panel["targets"] for panel in dashboard["panels"])
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for word in ("read per second", "written per second", "lag", "latency"):
        assert word in titles
    exported = set(METRICS) | {"up"}  # `up` is Prometheus's own, per scraped target
    for query in dashboard_queries():
        names = set(re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\{", query))
        assert names, query
        assert names <= exported, (query, names - exported)


@pytest.mark.parametrize("panel", json.loads(DASHBOARD.read_text())["panels"])
def test_every_dashboard_panel_is_placed_and_uses_the_prometheus_input(panel):
    assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
    assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
    assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_the_process_sample_reads_resident_pages_and_cpu_time(tmp_path):
    import os

    statm = tmp_path / "statm"
    statm.write_text("5000 1200 300 10 0 900 0\n")
    sample = process_sample(statm)
    assert sample["rss_bytes"] == 1200 * os.sysconf("SC_PAGE_SIZE")
    assert sample["cpu_seconds"] > 0
    assert "rss_bytes" not in process_sample(tmp_path / "missing")
    row = {**summarise("objects", "/objects/", {"received": 1}), **sample}
    text = metrics_text([row])
    assert f'process_resident_memory_bytes{{worker="objects"}} {sample["rss_bytes"]!r}' in text
    assert "# TYPE process_cpu_seconds_total counter" in text
