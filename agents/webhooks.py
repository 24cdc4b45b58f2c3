"""The webhooks worker: signed HTTPS POSTs of annotated alerts to subscribers' URLs.

Launch with ``faust -A agents.webhooks worker`` (app id ``<app_prefix>-webhooks``). A batch
loop reads ``annotated_alerts_topic`` and ``annotations_topic``; for each annotated alert
and each webhook subscription it matches (``notify_subscriptions``), the body
(:func:`brokerapp.domain.notify.webhooks.body`: the annotation JSON, or a Slack-compatible
``{"text"}``) is queued in the ledger (``<notify_dir>/webhooks.sqlite``) before the batch's
offsets are committed. A timer (every ``notify_poll_seconds``) runs
:class:`brokerapp.runtime.notify.WebhookSender`: POST with ``X-Broker-Signature:
sha256=<HMAC-SHA256 of the body under the subscription's secret>``, retried with backoff,
every attempt recorded; after ``webhook_retry_attempts`` the delivery is dead and its body
goes to ``<topic_prefix>webhooks-deadletter`` with the reason in its headers.

Status: ``/webhooks/`` and ``/webhooks/status.json`` on ``webhooks_web_port``.
"""

from __future__ import annotations

import time
from typing import Any

import faust

from brokerapp.domain.notify import webhooks as hooks
from brokerapp.domain.notify.notices import NoticeError
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.batch import Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.runtime.notify import (
    SubscriptionFile,
    WebhookSender,
    input_topics,
    ledger_for,
    notices_of,
)
from brokerapp.wire.headers import deadletter_headers

__all__ = ["build"]


def build(settings: Settings) -> faust.App:
    """Build the webhooks app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With its batch loop ``app.batch_loops["process"]``, ``app.sender`` (the
        :class:`WebhookSender`), ``app.deliver()`` (one round and its dead letters) and
        ``app.ledger``.
    """
    branch = "webhooks"
    app = create_app(settings, branch, web_port=settings.webhooks_web_port)
    runtime = BranchRuntime(app, settings, branch, settings.annotated_alerts_topic)
    ledger = ledger_for(settings, branch)
    subscriptions = SubscriptionFile(settings.notify_subscriptions)
    sender = WebhookSender(settings, ledger, subscriptions)

    async def process(records: list[Record], out: Outbox) -> None:
        """Queue one signed delivery per (annotated alert, matching subscription)."""
        subs = subscriptions.get()
        rows = []
        now = time.time()
        for record in records:
            started = time.perf_counter()
            runtime.received += 1
            try:
                notice = await notices_of(runtime, record)
            except NoticeError as exc:
                runtime.dead_letter_to(out, record, exc)
                continue
            if notice is None:
                continue
            for sub in subs.webhooks_for(notice):
                mine = notice.for_subscription(set(sub.names))
                url = settings.alert_url_template.format(
                    survey=mine.survey, alert_id=mine.alert_id, object_id=mine.object_id or ""
                )
                rows.append((sub.id, notice.key, hooks.body(sub.id, mine, url, sub.slack), now))
            runtime.processed(started)
        if rows:
            ledger.queue_webhooks(rows)

    runtime.run_batches(process, topics=input_topics(settings), transactional=False)

    async def deliver() -> int:
        """One round of the sender; dead deliveries go to the dead-letter topic."""
        dead = await sender.work()
        for row, error in dead:
            headers = deadletter_headers(error, RuntimeError(error), "webhooks", 0, 0)
            headers.append(("subscription", str(row["subscription"]).encode()))
            headers.append(("notice", str(row["notice"]).encode()))
            await runtime.send(runtime.deadletter_name, None, bytes(row["body"]), headers)
        return len(dead)

    @app.timer(interval=settings.notify_poll_seconds)
    async def send_webhooks() -> None:
        """POST what is due."""
        await deliver()

    def status() -> dict[str, Any]:
        base = runtime.status()
        sent = sender.status()
        return {
            **base,
            "notifier": "webhooks",
            "written": sent["delivered"],
            "failures": sent["failures"],
            "bytes": sent["bytes"],
            "backlog": sent["backlog"],
            "oldest_unsent_age_s": sent["oldest_unsent_age_s"],
            "webhooks": sent,
            "subscriptions": len(subscriptions.get().webhook),
            "subscriptions_error": subscriptions.last_error,
        }

    add_status_pages(app, branch, status)
    app.status = status
    app.sender = sender
    app.deliver = deliver
    app.ledger = ledger
    return app


__getattr__ = lazy_app(__name__, build)
