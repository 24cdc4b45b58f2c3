"""Prometheus, as ``services up --monitoring`` starts it, scrapes real workers.

The test starts its own Prometheus (Debian's ``prometheus``) through the same code as
``services up --monitoring``, in a temporary services home on a free port, with the worker
web ports of two real workers (ssfilter and candidates, run as a user runs them) in its
generated scrape targets. After the workers have processed the sample alerts it asks
Prometheus's HTTP API for their series, runs every query of the Grafana dashboard and checks
that the alerting rules load and evaluate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from brokerapp.model.settings import Settings
from brokerapp.tools.services import Services
from brokerapp.tools.services.probes import kafka_ready, registry_ready

from .test_branches import fill_buffer, samples, ztf_solar
from .workers import WorkerRun, free_port

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "broker-dashboard.json"


def api(port: int, path: str, **params: str) -> dict:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}{query}", timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def local_services(settings):
    """The local Kafka cluster and registry answer (all this test needs of the services).

    Probed directly: planning the services of the shared home would rewrite their
    configuration files.
    """
    deadline = time.monotonic() + 30
    probes = {
        "kafka-local": kafka_ready(settings.kafka_bootstrap, 1),
        "registry-local": registry_ready(settings.registry_url),
    }
    while pending := [name for name, ready in probes.items() if not ready()]:
        if time.monotonic() > deadline:
            pytest.fail(f"not answering: {', '.join(pending)}: run `brokerapp services up`")
        time.sleep(1)


@pytest.fixture
def workers(tmp_path):
    prefix = WorkerRun(tmp_path).prefix
    topics = {
        "BROKER_SOLAR_TOPIC": f"{prefix}-solar",
        "BROKER_NONSOLAR_TOPIC": f"{prefix}-nonsolar",
        "BROKER_CANDIDATES_TOPIC": f"{prefix}-candidates",
        "BROKER_SS_CANDIDATES_TOPIC": f"{prefix}-ss-candidates",
        "BROKER_ALERTS_PARTITIONS": "4",
    }
    runs = {}
    for module, path, port_setting in (
        ("agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT"),
        ("agents.candidates", "candidates", "BROKER_CANDIDATES_WEB_PORT"),
    ):
        run = WorkerRun(tmp_path / path, module=module, path=path, port_setting=port_setting)
        run.prefix = prefix
        run.workdir.mkdir(parents=True)
        run.env_overrides.update(topics)
        runs[path] = run
    yield runs
    for run in runs.values():
        run.stop()


async def test_prometheus_scrapes_every_worker_and_runs_the_dashboard(
    local_services, settings, tmp_path, workers
):
    ssfilter, candidates = workers["ssfilter"], workers["candidates"]
    alerts = samples("ztf")
    nonsolar = [a for a in alerts if not ztf_solar(a[1])]
    await fill_buffer(settings, ssfilter.alerts, alerts)
    for run in workers.values():
        run.start()
    ssfilter.wait_status(lambda s: s["received"] == len(alerts))
    candidates.wait_status(lambda s: s["received"] == len(alerts))  # solar and nonsolar

    monitoring = Settings(
        home=tmp_path / "home",
        prometheus_port=free_port(),
        prometheus_scrape_seconds=1,
        ssfilter_web_port=ssfilter.port,
        candidates_web_port=candidates.port,
    )
    svc = Services(monitoring)
    prometheus = svc.start_monitoring()
    port = prometheus.port
    try:
        ours = f"127.0.0.1:({ssfilter.port}|{candidates.port})"
        selector = f'{{job="broker", instance=~"{ours}"}}'

        def received():
            result = api(port, "query", query=f"broker_received_total{selector}")["result"]
            return {s["metric"]["worker"]: s for s in result} if len(result) == 2 else None

        series = wait_for("both workers' series", received)
        assert series.keys() == {"ssfilter", "candidates"}
        assert float(series["ssfilter"]["value"][1]) == len(alerts)
        assert float(series["candidates"]["value"][1]) == len(alerts)
        assert series["ssfilter"]["metric"]["instance"] == f"127.0.0.1:{ssfilter.port}"

        sent = api(port, "query", query=f"broker_sent_total{selector}")["result"]
        by_worker = {s["metric"]["worker"]: float(s["value"][1]) for s in sent}
        # ssfilter: each alert to its split stream, and its cutouts once; candidates: one
        # update per alert.
        assert by_worker == {"ssfilter": 2 * len(alerts), "candidates": len(alerts)}
        assert len(nonsolar) < len(alerts)

        for worker in ("ssfilter", "candidates"):
            names = api(port, "label/__name__/values", **{"match[]": f'{{worker="{worker}"}}'})
            assert {
                "broker_up",
                "broker_received_total",
                "broker_sent_total",
                "broker_deadlettered_total",
                "broker_lag",
                "broker_latency_ms",
                "process_cpu_seconds_total",
                "process_resident_memory_bytes",
            } <= set(names), (worker, names)
        up = api(port, "query", query=f"up{selector}")["result"]
        assert sorted(float(s["value"][1]) for s in up) == [1.0, 1.0]

        # Every dashboard query runs; the throughput, lag and latency panels have data.
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            title = panel["title"].lower()
            for target in panel["targets"]:
                query = target["expr"].replace("$worker", "ssfilter|candidates")
                query = query.replace("$__rate_interval", "1m")

                def both(query=query):
                    result = api(port, "query", query=query)["result"]
                    found = {s["metric"].get("worker") for s in result}
                    return {"ssfilter", "candidates"} <= found

                if any(
                    w in title
                    for w in ("read per", "written per", "lag", "latency", "memory", "cpu")
                ):
                    # rate() has a value from the second sample of a counter on.
                    wait_for(f"both workers in {title!r}: {query}", both, timeout=30)
                else:
                    api(port, "query", query=query)  # runs (its status is success)

        def rules_evaluated():
            groups = api(port, "rules")["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all(r["health"] == "ok" for r in rules) else None

        rules = wait_for("the alerting rules to evaluate", rules_evaluated)
        assert {r["name"] for r in rules} >= {
            "BrokerConsumerLag",
            "BrokerDeadLetterRate",
            "BrokerGatewayStalled",
            "BrokerStoreDown",
        }
    finally:
        svc.stop(prometheus.name, grace=20)


def test_the_overview_draws_each_workers_lag_and_latency_over_the_last_minutes(
    local_services, settings, tmp_path, workers
):
    import asyncio

    ssfilter, candidates = workers["ssfilter"], workers["candidates"]
    alerts = samples("ztf")
    asyncio.run(fill_buffer(settings, ssfilter.alerts, alerts))
    for run in workers.values():
        run.start()
    own = ssfilter.wait_status(lambda s: s["received"] == len(alerts) and s["lag"] == 0)
    candidates.wait_status(lambda s: s["received"] == len(alerts))
    port = free_port()
    env = {
        **os.environ,
        **ssfilter.env(),
        "BROKER_CANDIDATES_WEB_PORT": str(candidates.port),
        "BROKER_OVERVIEW_POLL_SECONDS": "0.2",
    }
    log = open(tmp_path / "overview.log", "wb")  # noqa: SIM115
    overview = subprocess.Popen(
        [sys.executable, "-m", "brokerapp", "overview", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()

    def rows():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                page = r.read().decode()
        except OSError:
            return None
        found = {}
        for worker in ("ssfilter", "candidates"):
            row = page.split(f'<tr id="{worker}">')[1].split("</tr>")[0]
            lag = row.split('<td class="lag_trend">')[1].split("</td>")[0]
            p99 = row.split('<td class="p99_ms_trend">')[1].split("</td>")[0]
            if "<polyline" not in lag or "<polyline" not in p99:
                return None
            found[worker] = (lag, p99)
        return found

    try:
        found = wait_for("lines of lag and p99 on the overview", rows, timeout=30)
        assert own["lag"] == 0
        assert "<title>now 0, max 0</title>" in found["ssfilter"][0]
        assert " ms</title>" in found["ssfilter"][1]
    finally:
        overview.terminate()
        overview.wait(10)


def test_services_status_and_down_know_the_prometheus_they_started(tmp_path):
    svc = Services(Settings(home=tmp_path / "home", prometheus_port=free_port()))
    prometheus = svc.start_monitoring()
    try:
        (state,) = svc.status()
        assert (state.name, state.running, state.answering) == ("prometheus", True, True)
        assert state.port == prometheus.port
        config = (tmp_path / "home" / "monitoring" / "prometheus.yml").read_text()
        assert "job_name: broker" in config
        with urllib.request.urlopen(
            f"http://127.0.0.1:{prometheus.port}/api/v1/status/flags", timeout=10
        ) as r:
            flags = json.load(r)["data"]
        assert flags["web.listen-address"] == f"127.0.0.1:{prometheus.port}"
        assert flags["storage.tsdb.path"] == str(tmp_path / "home" / "monitoring" / "data")
    finally:
        stopped = svc.down(grace=20)
    assert stopped == ["prometheus"]
    assert svc.pid("prometheus") is None
