"""A gateway restarted after new upstream daily topics appeared mirrors them too.

The gateway's upstream consumer is a static group member (``group.instance.id``), which
sends no LeaveGroup on stop and keeps its member entry on the broker for the session
timeout. A member that comes back within that time takes over its old entry *without a
rebalance* and gets its old assignment back, even when its pattern now matches daily topics
created while it was down (Kafka's classic protocol compares only the protocol name on that
path, KAFKA-12759). These tests stop the gateway (gracefully, and by ``kill -9``), create and
fill two new daily topics, restart it at once, and require every alert of the new topics in
``alerts`` before a deadline derived from the settings; they fail if the gateway sits on the
stale assignment.

Expected alerts are the upstream offsets the test itself wrote (``send_upstream``).
"""

from __future__ import annotations

import inspect
import json
import time

import pytest
from aiokafka import AIOKafkaConsumer

from .test_gateway import (
    LSST_FILES,
    lsst_values,
    origin,
    read_file,
    read_local,
    register_upstream,
    send_upstream,
)
from .workers import GatewayRun

#: The gateway leaves aiokafka's session timeout at its default: the time a stopped static
#: member stays in the group (and a restart within it gets the old assignment back).
SESSION_TIMEOUT_S = (
    inspect.signature(AIOKafkaConsumer).parameters["session_timeout_ms"].default / 1000
)
#: Slack (s) for the worker's own start and a rebalance on a busy two-core machine.
MARGIN_S = 30.0


@pytest.fixture
def gateway(tmp_path, services):
    run = GatewayRun(tmp_path)
    yield run
    run.stop()


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_restart_mirrors_daily_topics_created_while_down(settings, gateway, how):
    day1, day2, day3 = (gateway.lsst_topic(d) for d in ("20260201", "20260202", "20260203"))
    upstream_id = await register_upstream(settings, day1, read_file(LSST_FILES[0])[1])
    lsst, _records = lsst_values(upstream_id)
    sent1 = send_upstream(settings, day1, lsst)
    gateway.start()
    gateway.wait_status(
        lambda s: s["mirrored"] >= len(lsst) and all(p["lag"] == 0 for p in s["partitions"]),
        what=f"{day1} mirrored and committed",
    )

    stopped = time.monotonic()
    if how == "kill":
        gateway.kill()
    else:
        gateway.stop()
    sent_new = send_upstream(settings, day2, lsst) + send_upstream(settings, day3, lsst)
    gateway.start()
    restarted = time.monotonic() - stopped

    # Deadline for correctness, not a speed requirement: the old member's session, two
    # metadata refreshes (the new topics must be seen), and slack.
    metadata_age_s = int(gateway.env()["BROKER_GATEWAY_METADATA_MAX_AGE_MS"]) / 1000
    deadline = SESSION_TIMEOUT_S + 2 * metadata_age_s + MARGIN_S
    status = gateway.wait_status(
        lambda s: (
            {p["topic"] for p in s["partitions"]} >= {day1, day2, day3}
            and all(p["lag"] == 0 for p in s["partitions"])
        ),
        timeout=deadline,
        what=f"{day2} and {day3} assigned and mirrored within {deadline:.0f} s",
    )
    print(
        json.dumps(
            {
                "how": how,
                "restart_s": round(restarted, 1),
                "session_timeout_s": SESSION_TIMEOUT_S,
                "within_session": restarted < SESSION_TIMEOUT_S,
                "forced_rejoins": status["forced_rejoins"],
            }
        )
    )

    expected = set(sent1) | set(sent_new)
    messages = read_local(settings, gateway.alerts, len(expected) + 200, timeout=10)
    assert set(origin(m) for m in messages) == expected  # every alert of D2 and D3, nothing else
    assert {tp["topic"] for tp in status["partitions"]} == {day1, day2, day3}
    assert status["deadlettered"] == 0
