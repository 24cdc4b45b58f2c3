"""Webhooks over HTTPS to a real local receiver (aiohttp, a trustme test CA), signed.

The receiver verifies each request's HMAC-SHA256 signature over the raw body with the
subscription's secret (its own code, not the project's), and answers 503 to the first two
requests on purpose: the sender (:class:`brokerapp.runtime.notify.WebhookSender`) retries
with backoff and the third attempt is delivered, each attempt recorded. A sender trusting
another CA is refused by TLS verification and records that.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl

import trustme
from aiohttp import web

from brokerapp.adapters.notify.ledger import Ledger
from brokerapp.domain.notify import webhooks as hooks
from brokerapp.domain.notify.notices import from_annotated
from brokerapp.model.settings import load_settings
from brokerapp.runtime.notify import SubscriptionFile, WebhookSender
from tests.agents.harness import is_solar, samples

SECRET = "whsec-test"
T0 = 1_800_000_000.0


async def https_receiver(context, fail_first):
    seen = []

    async def hook(request):
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, request.headers.get("X-Broker-Signature", ""))
        seen.append((request.headers["X-Broker-Delivery"], json.loads(body), valid))
        if not valid:
            return web.Response(status=401)
        return web.Response(status=503 if len(seen) <= fail_first else 204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"https://127.0.0.1:{port}/hook", seen


def certificates(tmp_path):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    return context, ca_file, other


def queued(tmp_path, url, ca_file):
    subs = tmp_path / "subs.toml"
    subs.write_text(
        f'[[webhook]]\nid = "h1"\nurl = "{url}"\nsecret = "{SECRET}"\nwatchlists = ["wl1"]\n'
    )
    settings = load_settings(
        home=tmp_path,
        webhook_ca_file=ca_file,
        webhook_retry_attempts=4,
        notify_retry_backoff=2.0,
        notify_retry_backoff_max=60.0,
    )
    sample = [s for s in samples("ztf") if not is_solar(s)][0]
    annotation = {
        "alert_id": sample.record["candidate"]["candid"],
        "object_id": sample.record["objectId"],
        "watchlist_id": "wl1",
        "entry": "NGC 1",
        "separation_arcsec": 2.5,
        "mjd": None,
    }
    notice = from_annotated({"alert": sample.record, "annotations": [annotation]})
    ledger = Ledger(tmp_path / "webhooks.sqlite")
    ledger.queue_webhooks([("h1", notice.key, hooks.body("h1", notice, "http://x"), T0)])
    return WebhookSender(settings, ledger, SubscriptionFile(subs)), ledger, notice


async def test_signed_https_post_retried_with_backoff_until_delivered(tmp_path):
    context, ca_file, _other = certificates(tmp_path)
    runner, url, seen = await https_receiver(context, fail_first=2)
    try:
        sender, ledger, notice = queued(tmp_path, url, ca_file)
        await sender.work(T0)  # 503
        await sender.work(T0 + 1)  # within the 2 s backoff: not tried
        assert len(seen) == 1
        await sender.work(T0 + 2)  # 503, next backoff 4 s
        await sender.work(T0 + 5)
        assert len(seen) == 2
        await sender.work(T0 + 6)  # delivered
        await sender.work(T0 + 100)  # nothing left
    finally:
        await sender.client.close()
        await runner.cleanup()
    assert len(seen) == 3 and all(valid for *_x, valid in seen)
    assert {d for d, *_x in seen} == {f"h1:{notice.key}"}  # the same delivery ID each time
    assert seen[-1][1]["notice"]["alert_id"] == notice.alert_id
    assert seen[-1][1]["notice"]["matches"][0]["entry"] == "NGC 1"
    attempts = ledger.attempts("h1", notice.key)
    assert [(a["attempt"], a["status"], a["at"] - T0) for a in attempts] == [
        (1, 503, 0.0),
        (2, 503, 2.0),
        (3, 204, 6.0),
    ]
    assert [r["state"] for r in ledger.webhooks()] == ["delivered"]


async def test_a_certificate_of_another_ca_is_refused_and_dead_lettered_after_the_budget(
    tmp_path,
):
    context, _ca_file, other = certificates(tmp_path)
    runner, url, seen = await https_receiver(context, fail_first=0)
    try:
        sender, ledger, notice = queued(tmp_path, url, other)
        dead = []
        for t in (0, 2, 6, 14, 100):
            dead += await sender.work(T0 + t)
    finally:
        await sender.client.close()
        await runner.cleanup()
    assert seen == []  # TLS verification failed before any request
    assert len(dead) == 1 and "CERTIFICATE_VERIFY_FAILED" in dead[0][1]
    assert [a["attempt"] for a in ledger.attempts("h1", notice.key)] == [1, 2, 3, 4]
    assert [r["state"] for r in ledger.webhooks()] == ["dead"]
