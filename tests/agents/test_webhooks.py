"""The webhooks worker in memory, POSTing to a real local aiohttp receiver.

The receiver checks each signature with its own HMAC and answers 500 to every request of
``slack-bright`` (so that delivery is retried to its budget, then dead-lettered), 200 to
the others.
"""

import hashlib
import hmac
import json
import time

from aiohttp import web

from agents.webhooks import build

from .harness import header, prepare, run_agent
from .notify_inputs import feed_inputs, nonsolar_ztf, write_subscriptions

SECRETS = {"hook-wl1": b"s3cret-wl1", "slack-bright": b"s3cret-slack"}


async def receiver(received):
    async def hook(request):
        body = await request.read()
        delivery = request.headers["X-Broker-Delivery"]
        sub = delivery.split(":")[0]
        good = "sha256=" + hmac.new(SECRETS[sub], body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(good, request.headers["X-Broker-Signature"])
        received.append((sub, delivery, json.loads(body), ok))
        return web.Response(status=500 if sub == "slack-bright" else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hook"


async def test_signed_posts_delivered_failures_retried_then_dead_lettered(
    settings, registry, tmp_path
):
    received = []
    runner, url = await receiver(received)
    try:
        settings = settings.model_copy(
            update={
                "notify_subscriptions": write_subscriptions(tmp_path, url),
                "webhook_retry_attempts": 3,
                "notify_retry_backoff": 0.01,
                "notify_retry_backoff_max": 0.01,
            }
        )
        ztf = nonsolar_ztf(2)
        app = build(settings)
        sent = prepare(app)
        async with run_agent(app, "process", settings.annotated_alerts_topic) as feed:
            await feed_inputs(feed, settings, registry, annotated=ztf, crossmatched=ztf[:1])
        now = time.time()
        for round_ in range(4):
            await app.sender.work(now + 10 * round_)  # past each backoff
        dead = [r for r in app.ledger.webhooks("dead")]
    finally:
        await runner.cleanup()

    assert all(ok for *_, ok in received)
    wl1 = [r for r in received if r[0] == "hook-wl1"]
    assert [r[2]["notice"]["alert_id"] for r in wl1] == [
        s.record["candidate"]["candid"] for s in ztf
    ]
    assert wl1[0][2]["notice"]["matches"][0]["entry"] == "SN-candidate"
    slack = [r for r in received if r[0] == "slack-bright"]
    assert len(slack) == 3  # the budget
    assert set(slack[0][2]) == {"text"} and "catalogue:bright" in slack[0][2]["text"]
    assert [r["subscription"] for r in dead] == ["slack-bright"]
    attempts = app.ledger.attempts("slack-bright", dead[0]["notice"])
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 500), (3, 500)]
    assert len(app.ledger.webhooks("delivered")) == 2
    assert app.status()["webhooks"]["dead"] == 1
    assert len(sent.on(f"{settings.topic_prefix}webhooks-deadletter")) == 2  # the garbage


async def test_dead_deliveries_go_to_the_dead_letter_topic_with_the_reason(
    settings, registry, tmp_path
):
    settings = settings.model_copy(
        update={
            # nothing listens on port 1: every attempt fails to connect
            "notify_subscriptions": write_subscriptions(tmp_path, "http://127.0.0.1:1/hook"),
            "webhook_retry_attempts": 1,
        }
    )
    ztf = nonsolar_ztf(1)
    app = build(settings)
    sent = prepare(app)
    async with run_agent(app, "process", settings.annotated_alerts_topic) as feed:
        await feed_inputs(feed, settings, registry, annotated=ztf, crossmatched=[], garbage=False)
    assert await app.deliver() == 1
    dead = sent.on(f"{settings.topic_prefix}webhooks-deadletter")
    assert len(dead) == 1
    assert header(dead[0], "subscription") == b"hook-wl1"
    assert b"ConnectError" in header(dead[0], "error-reason")
    assert json.loads(dead[0].value)["notice"]["alert_id"] == ztf[0].record["candidate"]["candid"]
