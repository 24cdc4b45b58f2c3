"""The email worker: per-alert emails and digests to the watchlists' subscribers.

Launch with ``faust -A agents.email_notify worker`` (app id ``<app_prefix>-email``). A batch
loop reads ``annotated_alerts_topic`` and ``annotations_topic``; for each annotated alert and
each email subscription it matches (``notify_subscriptions``,
:mod:`brokerapp.domain.notify.subscriptions`), one row is queued in the worker's ledger
(``<notify_dir>/email.sqlite``, :mod:`brokerapp.adapters.notify.ledger`) before the batch's
offsets are committed. A timer (every ``notify_poll_seconds``) runs
:class:`brokerapp.runtime.notify.EmailSender`: per-alert emails within the per-recipient
rate limit, the rest held for the next digest, one digest per subscription per period
(``email_digest_seconds``), through SMTP (``smtp_*``: STARTTLS, AUTH). An SMTP server that is
down or refuses leaves the rows queued and retried with backoff: nothing lost, nothing sent
twice (see the ledger's docstring for the one crash window).

Web view (``email_web_port``): ``/email/`` and ``/email/status.json`` (emails, digests,
held, failures, bytes, backlog, age of the oldest unsent notification) and
``/email/unsubscribe?s=<subscription>&t=<token>`` (the link in every email; the token is an
HMAC of the subscription under ``email_unsubscribe_secret``).
"""

from __future__ import annotations

import html
import time
from typing import Any

import faust

from brokerapp.domain.notify.email import verify_unsubscribe
from brokerapp.domain.notify.notices import NoticeError
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.batch import Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.runtime.notify import (
    EmailSender,
    SubscriptionFile,
    input_topics,
    ledger_for,
    notices_of,
)
from brokerapp.wire import records as jsonrecords

__all__ = ["build"]


def build(settings: Settings) -> faust.App:
    """Build the email app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With its batch loop ``app.batch_loops["process"]``, ``app.sender`` (the
        :class:`EmailSender` its timer runs) and ``app.ledger``.
    """
    branch = "email"
    app = create_app(settings, branch, web_port=settings.email_web_port)
    runtime = BranchRuntime(app, settings, branch, settings.annotated_alerts_topic)
    ledger = ledger_for(settings, branch)
    subscriptions = SubscriptionFile(settings.notify_subscriptions)
    sender = EmailSender(settings, ledger, subscriptions)
    secret = settings.email_unsubscribe_secret.get_secret_value().encode()

    async def process(records: list[Record], out: Outbox) -> None:
        """Queue one email row per (annotated alert, matching subscription)."""
        subs = subscriptions.get()
        gone = ledger.unsubscribed()
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
            for sub in subs.emails_for(notice):
                if sub.id in gone:
                    continue
                body = jsonrecords.dumps(notice.for_subscription(set(sub.names)).to_json())
                state = "held" if sub.digest_only else "new"
                rows.append((sub.id, notice.key, sub.to, body.decode(), now, state))
            runtime.processed(started)
        if rows:
            ledger.queue_emails(rows)

    runtime.run_batches(process, topics=input_topics(settings), transactional=False)

    @app.timer(interval=settings.notify_poll_seconds)
    async def send_emails() -> None:
        """Send what the ledger holds (per-alert, then due digests)."""
        await sender.work()

    @app.page("/email/unsubscribe")
    async def unsubscribe(web: Any, request: Any) -> Any:
        query = dict(request.query)
        subscription, token = query.get("s", ""), query.get("t", "")
        if not subscription or not verify_unsubscribe(secret, subscription, token):
            return web.html("<p>This unsubscribe link is not valid.</p>", status=403)
        ledger.unsubscribe(subscription, time.time())
        return web.html(f"<p>Unsubscribed: {html.escape(subscription)}.</p>")

    def status() -> dict[str, Any]:
        base = runtime.status()
        sent = sender.status()
        return {
            **base,
            "notifier": "email",
            "written": sent["emails"] + sent["digests"],
            "failures": sent["failures"],
            "bytes": sent["bytes"],
            "backlog": sent["backlog"],
            "oldest_unsent_age_s": sent["oldest_unsent_age_s"],
            "email": sent,
            "subscriptions": len(subscriptions.get().email),
            "subscriptions_error": subscriptions.last_error,
            "unsubscribed": len(ledger.unsubscribed()),
        }

    add_status_pages(app, branch, status)
    app.status = status
    app.sender = sender
    app.ledger = ledger
    return app


__getattr__ = lazy_app(__name__, build)
