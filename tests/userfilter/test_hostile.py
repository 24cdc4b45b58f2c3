"""Hostile and broken filters in real sandboxes, each beside a well-behaved neighbour.

Every test runs one filter from ``tests/userfilter/filters`` while a well-behaved filter
(``wellbehaved:even``, passes even ``n``) works through its own alerts in another sandbox. It
checks that the hostile one is contained (its processes, files, network and environment),
stopped or throttled, and reported with the reason in its status; and that the neighbour
answered every one of its alerts correctly, without a fault or a restart.
"""

import asyncio
import dataclasses
import os
import stat
from pathlib import Path

import pytest

from brokerapp.model.settings import load_settings
from brokerapp.runtime.userfilter.process import AlertItem
from brokerapp.runtime.userfilter.sandbox import (
    SandboxLimits,
    SandboxPlan,
    python_plan,
    read_usage,
)
from brokerapp.runtime.userfilter.supervisor import (
    FilterGaveUp,
    FilterSupervisor,
    SupervisorConfig,
)
from tests.userfilter.conftest import HOSTILE

NEIGHBOUR_ALERTS = 2000
HOSTILE_CONFIG = SupervisorConfig(
    answer_timeout=1.0, start_timeout=20, max_restarts=2, restart_initial=0.05, restart_max=0.2
)


def alerts(start, count):
    return [AlertItem(record={"n": n}) for n in range(start, start + count)]


class Neighbour:
    """The well-behaved filter, fed in batches until its alerts are done and the test ends."""

    def __init__(self):
        config = SupervisorConfig(answer_timeout=30, start_timeout=30, max_restarts=0)
        self.sup = FilterSupervisor("neighbour", python_plan(HOSTILE, "wellbehaved:even"), config)
        self.done = asyncio.Event()
        self.verdicts = []

    async def run(self):
        n = 0
        while n < NEIGHBOUR_ALERTS or not self.done.is_set():
            batch = alerts(n % NEIGHBOUR_ALERTS, 50)
            verdicts = await self.sup.process(batch)
            if n < NEIGHBOUR_ALERTS:
                self.verdicts += verdicts
            n += len(batch)
            await asyncio.sleep(0)

    @property
    def staged(self):
        return self.sup._process._staged


@pytest.fixture
async def neighbour():
    """Start the neighbour, let the test run its hostile filter, then check the neighbour."""
    nb = Neighbour()
    await nb.sup.start()
    task = asyncio.create_task(nb.run())
    yield nb
    nb.done.set()
    try:
        await asyncio.wait_for(task, 120)
    finally:
        await nb.sup.stop()
    assert len(nb.verdicts) == NEIGHBOUR_ALERTS
    passed = [v["annotations"]["n"] for v in nb.verdicts if v["action"] == "pass"]
    assert passed == list(range(0, NEIGHBOUR_ALERTS, 2))
    assert sum(v["action"] == "drop" for v in nb.verdicts) == NEIGHBOUR_ALERTS // 2
    status = nb.sup.status()
    assert status["errors"] == 0 and status["restarts"] == 0 and status["faults"] == {}, status


async def run_hostile(name, plan, items, config=HOSTILE_CONFIG, params=None):
    sup = FilterSupervisor(name, plan, config, params=params)
    try:
        await sup.start()
        verdicts = await sup.process(items)
    finally:
        await sup.stop()
    return sup, verdicts


@pytest.mark.parametrize("cgroups", [True, False], ids=["rlimit+cgroup", "rlimit-only"])
async def test_fork_bomb_is_held_to_its_process_limit_and_stopped(neighbour, cgroups):
    limits = SandboxLimits(processes=12)
    config = dataclasses.replace(HOSTILE_CONFIG, use_cgroups=cgroups)
    sup = FilterSupervisor("forkbomb", python_plan(HOSTILE, "forkbomb:bomb", limits), config)
    most = 0
    polling = True

    async def poll():
        nonlocal most
        while polling:
            most = max(most, read_usage(sup.uid).processes)
            await asyncio.sleep(0.05)

    poller = asyncio.create_task(poll())
    try:
        await sup.start()
        verdicts = await sup.process(alerts(0, 3))
        with pytest.raises(FilterGaveUp):
            await sup.process(alerts(3, 1))
    finally:
        polling = False
        await poller
        await sup.stop()
    assert most > 3, "the bomb never forked"
    assert most <= 12
    assert [v["action"] for v in verdicts] == ["error"] * 3
    status = sup.status()
    assert status["state"] == "failed"
    assert status["last_reason"].startswith("timeout: no answer within 1 s (at its process limit")
    assert "gave up" in status["last_reason"]
    assert read_usage(sup.uid).processes == 0


async def test_spinning_filter_is_stopped_by_the_answer_timeout(neighbour):
    sup, verdicts = await run_hostile("spin", python_plan(HOSTILE, "spin:spin"), alerts(0, 2))
    assert [v["action"] for v in verdicts] == ["error", "error"]
    status = sup.status()
    assert status["faults"] == {"timeout": 2}
    assert status["last_reason"].startswith("timeout: no answer within 1 s")
    assert status["restarts"] == 1


async def test_spinning_filter_is_throttled_by_its_cpu_quota(neighbour):
    limits = SandboxLimits(cpu_share=0.2)
    config = SupervisorConfig(answer_timeout=2.0, max_restarts=0)
    sup = FilterSupervisor("spin-quota", python_plan(HOSTILE, "spin:spin", limits), config)
    await sup.start()
    if "cpu" not in sup._process.cgroups.controllers:
        await sup.stop()
        pytest.skip("no writable cgroup v1 cpu hierarchy here")
    try:
        verdicts = await sup.process(alerts(0, 1))
    finally:
        status = sup.status()
        await sup.stop()
    assert verdicts[0]["action"] == "error"
    assert status["throttled_ms"] > 0
    assert "throttled by its CPU quota" in status["last_reason"]


async def test_cpu_time_limit_kills_a_spinner_given_a_long_timeout(neighbour):
    limits = SandboxLimits(cpu_seconds=1, cpu_share=0)
    config = SupervisorConfig(answer_timeout=60, max_restarts=0)
    sup, verdicts = await run_hostile(
        "spin-rlimit", python_plan(HOSTILE, "spin:spin", limits), alerts(0, 1), config
    )
    assert verdicts[0]["action"] == "error"
    assert sup.status()["last_reason"].startswith("crash: CPU-time limit reached (SIGXCPU)")


async def test_unbounded_allocation_fails_inside_the_filter_only(neighbour):
    limits = SandboxLimits(memory_mb=256)
    config = SupervisorConfig(answer_timeout=20, max_restarts=0)
    sup, verdicts = await run_hostile(
        "hog", python_plan(HOSTILE, "hog:hog", limits), alerts(0, 3), config
    )
    assert [v["action"] for v in verdicts] == ["error"] * 3
    assert all(v["reason"].startswith("MemoryError") for v in verdicts), verdicts
    status = sup.status()
    assert status["faults"] == {} and status["errors"] == 3
    assert 0 < status["peak_rss_kb"] < 256 * 1024


async def test_no_network_inside_the_sandbox(neighbour):
    connections = []

    async def accept(reader, writer):
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kafka_port = load_settings().kafka_port()
    try:
        params = {"targets": [["127.0.0.1", port], ["127.0.0.1", kafka_port]]}
        sup, verdicts = await run_hostile(
            "network", python_plan(HOSTILE, "network:Network"), alerts(0, 1), params=params
        )
    finally:
        server.close()
        await server.wait_closed()
    annotations = verdicts[0]["annotations"]
    assert annotations["reached"] == []
    assert len(annotations["failures"]) == 3
    assert connections == []


async def test_no_view_of_the_broker_other_filters_or_the_host(neighbour, tmp_path, monkeypatch):
    monkeypatch.setenv("BROKER_MARIADB_PASSWORD", "hunter2-not-for-filters")
    secret = tmp_path / "other-user-secret.txt"
    secret.write_text("s3cret of another user")
    secret.chmod(0o644)
    settings = load_settings()
    other_filter = neighbour.staged / "code" / "wellbehaved.py"
    assert other_filter.exists()
    paths = [
        str(secret),
        str(settings.mariadb_password_path),
        str(settings.home.resolve() / "mariadb" / "password"),
        str(other_filter),
        "/etc/shadow",
        "/etc/passwd",
        "/root/.bashrc",
        "/proc/1/environ",
        str(Path.home() / ".ssh" / "id_rsa"),
    ]
    sup, verdicts = await run_hostile(
        "snoop", python_plan(HOSTILE, "snoop:Snoop"), alerts(0, 1), params={"paths": paths}
    )
    report = verdicts[0]["annotations"]
    leaked = [path for path, text in report["read"] if text.strip()]
    assert leaked == [], report["read"]
    assert {p for p, _ in report["refused"]} >= set(paths) - {"/proc/1/environ"}
    assert not {"work", "home", "root", "var", "srv", "opt", "mnt"} & set(report["root"])
    assert report["uid"] != 0 and report["uid"] != os.getuid()
    assert report["cap_eff"] == "0000000000000000" and report["no_new_privs"] == "1"
    assert report["wrote_code"] is False
    assert not [key for key in report["env"] if key.startswith("BROKER")]
    assert "hunter2" not in str(report)
    assert len(report["pids"]) <= 3  # bwrap's init and the filter (and maybe bwrap's helper)


async def test_filter_crashing_on_every_alert_is_given_up(neighbour):
    sup = FilterSupervisor("crash", python_plan(HOSTILE, "crash:crash"), HOSTILE_CONFIG)
    try:
        await sup.start()
        verdicts = await sup.process(alerts(0, 3))
        with pytest.raises(FilterGaveUp):
            await sup.process(alerts(3, 2))
    finally:
        await sup.stop()
    assert [v["action"] for v in verdicts] == ["error"] * 3
    status = sup.status()
    assert status["state"] == "failed"
    assert status["faults"] == {"crash": 3} and status["restarts"] == 2
    assert status["last_reason"].startswith("crash: exited with status 3")
    assert "gave up after 3 faults in a row" in status["last_reason"]


async def test_filter_raising_on_every_alert_keeps_running(neighbour):
    sup, verdicts = await run_hostile(
        "raises", python_plan(HOSTILE, "raises:raises"), alerts(0, 20)
    )
    assert [v["reason"] for v in verdicts] == [
        f"ValueError: cannot handle alert {n}" for n in range(20)
    ]
    status = sup.status()
    assert status["errors"] == 20 and status["faults"] == {} and status["restarts"] == 0
    assert status["last_reason"] == "ValueError: cannot handle alert 19"


@pytest.mark.parametrize(
    "script, reason",
    [("garbage.py", "exceeds the 16777216-byte limit"), ("notjson.py", "not UTF-8 JSON")],
)
async def test_garbage_on_stdout_is_a_protocol_fault(neighbour, script, reason):
    plan = SandboxPlan(command=("/usr/bin/python3", f"/code/{script}"), code_dir=HOSTILE)
    sup, verdicts = await run_hostile(script, plan, alerts(0, 2))
    assert [v["action"] for v in verdicts] == ["error", "error"]
    status = sup.status()
    assert status["faults"] == {"protocol": 2}
    assert status["last_reason"].startswith("protocol:") and reason in status["last_reason"]


async def test_slow_filter_is_stopped_at_the_answer_timeout(neighbour):
    sup, verdicts = await run_hostile(
        "slow", python_plan(HOSTILE, "slow:Slow"), alerts(0, 2), params={"delay": 5}
    )
    assert [v["action"] for v in verdicts] == ["error", "error"]
    assert sup.status()["faults"] == {"timeout": 2}


async def test_slow_filter_within_the_timeout_answers_everything(neighbour):
    sup, verdicts = await run_hostile(
        "slowish", python_plan(HOSTILE, "slow:Slow"), alerts(0, 5), params={"delay": 0.05}
    )
    assert [v["action"] for v in verdicts] == ["pass"] * 5
    assert sup.status()["faults"] == {}


async def test_prints_go_to_the_log_not_into_the_frames(neighbour):
    sup, verdicts = await run_hostile(
        "printer", python_plan(HOSTILE, "printer:printer"), alerts(0, 4)
    )
    assert [v["action"] for v in verdicts] == ["pass"] * 4
    assert "debug: looking at 3" in sup.status()["log_tail"]


async def test_stopped_filter_leaves_no_process_staging_or_cgroup(neighbour):
    sup = FilterSupervisor("tidy", python_plan(HOSTILE, "wellbehaved:even"), HOSTILE_CONFIG)
    await sup.start()
    process = sup._process
    staged, groups = process._staged, list(process.cgroups.paths.values())
    staged_modes = {
        name: (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
        for name, info in (
            ("code", (staged / "code").stat()),
            ("file", (staged / "code" / "wellbehaved.py").stat()),
        )
    }
    await sup.process(alerts(0, 10))
    await sup.stop()
    assert read_usage(sup.uid).processes == 0
    assert not staged.exists()
    assert staged_modes["code"] == (0, sup.uid, 0o750)
    assert staged_modes["file"] == (0, sup.uid, 0o640)
    assert not [g for g in groups if g.exists()]
    assert sup.status()["state"] == "stopped"


async def test_filter_that_stops_reading_is_stopped_when_its_pipe_is_full(neighbour, ztf_items):
    plan = SandboxPlan(command=("/usr/bin/python3", "/code/deaf.py"), code_dir=HOSTILE)
    sup = FilterSupervisor("deaf", plan, HOSTILE_CONFIG)
    await sup.start()
    try:
        with pytest.raises(FilterGaveUp):
            await sup.process(ztf_items[:1] * 100)  # 100 alerts of 60-70 KB: far over a pipe
    finally:
        await sup.stop()
    status = sup.status()
    assert status["faults"] == {"timeout": 3}
    assert status["last_reason"].startswith("timeout: did not read its input within 1 s")


async def test_log_flood_is_kept_to_a_bounded_tail(neighbour):
    sup, verdicts = await run_hostile("chatty", python_plan(HOSTILE, "chatty:chatty"), alerts(0, 5))
    assert [v["action"] for v in verdicts] == ["drop"] * 5
    tail = sup.status()["log_tail"]
    assert len(tail) == 50 and all(len(line) <= 500 for line in tail)


async def test_filling_tmp_stops_at_its_size(neighbour):
    limits = SandboxLimits(tmp_mb=32)
    sup, verdicts = await run_hostile(
        "filler", python_plan(HOSTILE, "filler:fill", limits), alerts(0, 1)
    )
    report = verdicts[0]["annotations"]
    assert report["error"] in ("No space left on device", "File too large")
    assert report["written"] <= 32 * 1024 * 1024


@pytest.mark.parametrize(
    "plan, reason",
    [
        (python_plan(HOSTILE, "badstart:never"), "start: "),
        (SandboxPlan(("/usr/bin/python3", "/code/oldproto.py"), HOSTILE), "protocol '99'"),
        (SandboxPlan(("/usr/bin/no-such-program",), HOSTILE), "start: "),
    ],
    ids=["import-error", "wrong-protocol", "no-program"],
)
async def test_filter_that_cannot_start_is_given_up(neighbour, plan, reason):
    sup = FilterSupervisor("badstart", plan, HOSTILE_CONFIG)
    with pytest.raises(FilterGaveUp):
        await sup.start()
    status = sup.status()
    assert status["state"] == "failed" and status["faults"] == {"start": 3}
    assert reason in status["last_reason"]
    if plan.command[-1] == "badstart:never":
        assert any("a_module_that_is_not_in_the_sandbox" in line for line in status["log_tail"])


async def test_emitting_to_a_stream_not_granted_is_a_protocol_fault(neighbour, ztf_items):
    from tests.userfilter.conftest import EXAMPLES

    plan = python_plan(EXAMPLES / "python", "bright:Bright")
    sup = FilterSupervisor("sneaky", plan, HOSTILE_CONFIG, params={"summary": True})
    try:
        await sup.start()
        verdicts = await sup.process(ztf_items[:1])  # ZTF17aaacxxf, bright: emits
    finally:
        await sup.stop()
    assert verdicts[0]["action"] == "error"
    assert sup.status()["last_reason"] == "protocol: stream 'summary' was not granted"
