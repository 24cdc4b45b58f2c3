"""What the three notifier workers share: notices from the annotators, ledgers, senders.

Each notifier (``agents/voevent.py``, ``agents/email_notify.py``, ``agents/webhooks.py``) is
its own worker and consumer group on a batch loop reading ``annotated_alerts_topic`` (the
watchlist's AnnotatedAlerts, Avro through the local registry) and ``annotations_topic`` (the
crossmatch's records, JSON). :func:`notices_of` turns one record into its Notice
(:mod:`brokerapp.domain.notify.notices`), or None to skip it (a watchlist Annotation, whose
AnnotatedAlert is notified); an undecodable or unusable record is dead-lettered.

The email and webhook workers queue each batch's notifications in their ledger
(:class:`brokerapp.adapters.notify.ledger.Ledger`) before the batch's offsets are
committed, and send from the ledger on a timer (:class:`EmailSender`,
:class:`WebhookSender`): a server that is down or refuses leaves the rows queued, retried
with backoff (``notify_retry_backoff`` doubling to ``notify_retry_backoff_max``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from mode import Service

from brokerapp.adapters.notify.http import WebhookClient
from brokerapp.adapters.notify.ledger import Ledger
from brokerapp.adapters.notify.smtp import SMTP_ERRORS, SmtpSender
from brokerapp.domain.notify import email as mail
from brokerapp.domain.notify import webhooks as hooks
from brokerapp.domain.notify.notices import Notice, NoticeError, from_annotated, from_crossmatch
from brokerapp.domain.notify.subscriptions import Subscriptions, load_subscriptions
from brokerapp.model.settings import Settings
from brokerapp.runtime.backoff import backoff_delay
from brokerapp.runtime.batch import Record
from brokerapp.runtime.branch import BranchRuntime
from brokerapp.wire import records
from brokerapp.wire.codecs import DecodeError, RegistryUnavailable

__all__ = [
    "EmailSender",
    "Lifecycle",
    "SubscriptionFile",
    "WebhookSender",
    "input_topics",
    "ledger_for",
    "message_settings",
    "notices_of",
]

logger = logging.getLogger(__name__)

#: Webhook deliveries attempted per round of the sender.
WEBHOOK_ROUND = 200


class Lifecycle(Service):
    """Starts and stops something with the worker (``app.service(Lifecycle(start, stop))``)."""

    def __init__(self, start: Any, stop: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self._start = start
        self._stop = stop

    async def on_start(self) -> None:
        """Await ``start()``."""
        await self._start()

    async def on_stop(self) -> None:
        """Await ``stop()``."""
        await self._stop()


def input_topics(settings: Settings) -> list[str]:
    """Return what every notifier reads: the AnnotatedAlerts and the annotations."""
    return [settings.annotated_alerts_topic, settings.annotations_topic]


def ledger_for(settings: Settings, branch: str) -> Ledger:
    """Open the branch's ledger, ``<notify_dir>/<branch>.sqlite``."""
    return Ledger(settings.notify_dir / f"{branch}.sqlite")


async def notices_of(runtime: BranchRuntime, record: Record) -> Notice | None:
    """Return the notice of one input record (None: nothing to notify).

    Raises
    ------
    NoticeError
        The record is not usable (the caller dead-letters it); decode errors are wrapped.
    """
    settings = runtime.settings
    try:
        if record.topic == settings.annotations_topic:
            return from_crossmatch(records.loads(record.value or b""))
        _schema_id, decoded = await runtime.codec.decode(record.value or b"")
        return from_annotated(decoded)
    except (DecodeError, RegistryUnavailable, httpx.TransportError, ValueError) as exc:
        if isinstance(exc, NoticeError):
            raise
        raise NoticeError(f"undecodable: {exc}") from exc


class SubscriptionFile:
    """The subscriptions, re-read when the file changes (a bad edit keeps the last good)."""

    def __init__(self, path: Path):
        self.path = path
        self.mtime: float | None = None
        self.current = Subscriptions()
        self.last_error: str | None = None
        self.get()

    def get(self) -> Subscriptions:
        """Return the subscriptions in force."""
        try:
            mtime = self.path.stat().st_mtime if self.path.exists() else None
        except OSError:
            return self.current
        if mtime != self.mtime:
            self.mtime = mtime
            try:
                self.current = load_subscriptions(self.path)
                self.last_error = None
            except ValueError as exc:
                self.last_error = str(exc)
                logger.error("subscriptions not reloaded: %s", exc)
        return self.current


def message_settings(settings: Settings) -> mail.MessageSettings:
    """Return the email messages' settings from the one settings object."""
    return mail.MessageSettings(
        settings.email_from,
        settings.email_public_url,
        settings.email_unsubscribe_secret.get_secret_value().encode(),
        settings.alert_url_template,
    )


class _Retry:
    """Backoff of a sender whose server failed: when to try again."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.failures = 0
        self.not_before = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.not_before

    def failed(self, now: float) -> float:
        self.failures += 1
        delay = backoff_delay(
            self.failures,
            self.settings.notify_retry_backoff,
            self.settings.notify_retry_backoff_max,
        )
        self.not_before = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.not_before = 0.0


class EmailSender:
    """Works the email queue: per-alert emails within the rate limit, then due digests.

    One round (:meth:`work`):

    1. each ``new`` row (oldest first) of a subscription still in force: if its recipient
       is within ``email_rate_limit`` per ``email_rate_window_seconds``, its email is sent
       and the row becomes ``sent``; else the row is ``held`` for the digest of the current
       period. Rows of unsubscribed or removed subscriptions become ``dropped``.
    2. each ``(subscription, period)`` with ``held`` rows whose period has ended gets one
       digest (unless the ledger shows it went already), and its rows become ``digested``.

    A send that fails (server down, refused, timed out) leaves its row as it was, counts a
    failure and ends the round; the next round waits for the backoff.
    """

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        subscriptions: SubscriptionFile,
        smtp: SmtpSender | None = None,
    ):
        self.settings = settings
        self.ledger = ledger
        self.subscriptions = subscriptions
        self.smtp = smtp or SmtpSender(settings)
        self.message = message_settings(settings)
        self.retry = _Retry(settings)
        self.counts: Counter[str] = Counter()
        self.bytes_sent = 0
        self.last_error: str | None = None

    async def _send(self, message: Any, now: float) -> bool:
        try:
            await self.smtp.send(message)
        except SMTP_ERRORS as exc:
            self.counts["failures"] += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            delay = self.retry.failed(now)
            logger.warning("email to %s not sent (%s); again in %.1f s", message["To"], exc, delay)
            return False
        self.retry.succeeded()
        self.bytes_sent += len(message.as_bytes())
        return True

    async def work(self, now: float | None = None) -> None:
        """Run one round (see the class docstring); ``now`` in s since the epoch."""
        now = time.time() if now is None else now
        if not self.retry.ready(now):
            return
        s = self.settings
        subs = {sub.id: sub for sub in self.subscriptions.get().email}
        gone = self.ledger.unsubscribed()
        for row in self.ledger.emails("new"):
            sub = subs.get(row["subscription"])
            if sub is None or sub.id in gone:
                self.ledger.mark_email(row["subscription"], row["notice"], "dropped")
                self.counts["dropped"] += 1
                continue
            since = now - s.email_rate_window_seconds
            sent = self.ledger.sent_times(sub.to, since)
            if not mail.within_limit(sent, now, s.email_rate_limit, s.email_rate_window_seconds):
                period = mail.period_of(now, s.email_digest_seconds)
                self.ledger.mark_email(sub.id, row["notice"], "held", period=period)
                self.counts["held"] += 1
                continue
            notice = Notice.from_json(records.loads(row["body"]))
            message = mail.alert_message(self.message, sub.id, sub.to, notice, now)
            if not await self._send(message, now):
                self.ledger.email_failed(sub.id, row["notice"], self.last_error or "")
                return
            self.ledger.mark_email(sub.id, row["notice"], "sent", sent_at=now)
            self.counts["emails"] += 1
        await self._digests(now, subs, gone)

    async def _digests(self, now: float, subs: dict[str, Any], gone: set[str]) -> None:
        s = self.settings
        due: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for row in self.ledger.emails("held"):
            period = row["period"]
            if period is None:  # digest only: the period it was queued in
                period = mail.period_of(row["created"], s.email_digest_seconds)
                self.ledger.mark_email(row["subscription"], row["notice"], "held", period=period)
            if mail.digest_due(period, now, s.email_digest_seconds):
                due[(row["subscription"], period)].append(row)
        for (sub_id, period), rows in sorted(due.items()):
            names = [r["notice"] for r in rows]
            sub = subs.get(sub_id)
            if sub is None or sub_id in gone:
                for name in names:
                    self.ledger.mark_email(sub_id, name, "dropped")
                continue
            if self.ledger.digest_sent(sub_id, period):  # sent before a crash: not again
                self.ledger.record_digest(sub_id, period, sub.to, names, now)
                continue
            notices = [Notice.from_json(records.loads(r["body"])) for r in rows]
            message = mail.digest_message(
                self.message,
                sub_id,
                sub.to,
                period,
                s.email_digest_seconds,
                notices,
                s.email_digest_plots,
            )
            if not await self._send(message, now):
                return
            self.ledger.record_digest(sub_id, period, sub.to, names, now)
            self.counts["digests"] += 1

    def status(self) -> dict[str, Any]:
        """Messages sent, held, failures, backlog and the oldest unsent notification's age."""
        oldest = self.ledger.oldest_pending("email_queue")
        queue = self.ledger.counts("email_queue")
        return {
            "emails": self.counts["emails"],
            "digests": self.counts["digests"],
            "held": self.counts["held"],
            "failures": self.counts["failures"],
            "bytes": self.bytes_sent,
            "queue": queue,
            "backlog": queue.get("new", 0) + queue.get("held", 0),
            "oldest_unsent_age_s": None if oldest is None else round(time.time() - oldest, 1),
            "last_error": self.last_error,
            "retry_in_s": max(0.0, round(self.retry.not_before - time.time(), 1)),
        }


class WebhookSender:
    """Works the webhook queue: POST each due delivery, retry with backoff, dead-letter.

    A 2xx answer delivers; anything else (an error status, no answer, a TLS failure) is
    recorded as an attempt and retried after ``backoff_delay(attempt)``; after
    ``webhook_retry_attempts`` the delivery is ``dead`` and :meth:`work` returns it, for the
    worker to send to its dead-letter topic. Every attempt is kept in the ledger.
    """

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        subscriptions: SubscriptionFile,
        client: WebhookClient | None = None,
    ):
        self.settings = settings
        self.ledger = ledger
        self.subscriptions = subscriptions
        self.client = client or WebhookClient(settings)
        self.counts: Counter[str] = Counter()
        self.bytes_sent = 0
        self.last_error: str | None = None

    async def work(self, now: float | None = None) -> list[tuple[Any, str]]:
        """Run one round; return the deliveries that went dead with their last error."""
        now = time.time() if now is None else now
        s = self.settings
        subs = {sub.id: sub for sub in self.subscriptions.get().webhook}
        dead = []
        for row in self.ledger.due_webhooks(now, WEBHOOK_ROUND):
            sub = subs.get(row["subscription"])
            body = bytes(row["body"])
            status: int | None = None
            error: str | None = None
            if sub is None:
                error = "subscription removed"
            else:
                delivery = f"{sub.id}:{row['notice']}"
                try:
                    status = await self.client.post(
                        sub.url, body, hooks.headers(sub.secret, delivery, body)
                    )
                    if not 200 <= status < 300:
                        error = f"HTTP {status}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
            attempt = row["attempts"] + 1
            if error is None:
                self.ledger.webhook_attempt(
                    row["subscription"], row["notice"], now, status, None, "delivered", now
                )
                self.counts["delivered"] += 1
                self.bytes_sent += len(body)
                continue
            self.counts["failures"] += 1
            self.last_error = error
            if sub is None or attempt >= s.webhook_retry_attempts:
                self.ledger.webhook_attempt(
                    row["subscription"], row["notice"], now, status, error, "dead", now
                )
                self.counts["dead"] += 1
                dead.append((row, error))
                continue
            delay = backoff_delay(attempt, s.notify_retry_backoff, s.notify_retry_backoff_max)
            self.ledger.webhook_attempt(
                row["subscription"], row["notice"], now, status, error, "new", now + delay
            )
            self.counts["retries"] += 1
        return dead

    def status(self) -> dict[str, Any]:
        """Deliveries, retries, dead letters, backlog and the oldest undelivered age."""
        oldest = self.ledger.oldest_pending("webhook_queue")
        queue = self.ledger.counts("webhook_queue")
        return {
            "delivered": self.counts["delivered"],
            "retries": self.counts["retries"],
            "dead": self.counts["dead"],
            "failures": self.counts["failures"],
            "bytes": self.bytes_sent,
            "queue": queue,
            "backlog": queue.get("new", 0),
            "oldest_unsent_age_s": None if oldest is None else round(time.time() - oldest, 1),
            "last_error": self.last_error,
        }
