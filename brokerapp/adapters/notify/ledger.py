"""The delivery ledger of a notifier: what is queued, sent, held, retried or dead (SQLite).

Why a local SQLite file (one per worker, ``<notify_dir>/<branch>.sqlite``, WAL mode): a
notification's real output is an SMTP server or a web server, not Kafka, so the batch loop
cannot put it in a transaction with its offsets. The worker therefore first *queues* every
notification of a batch here (one SQLite transaction, ``INSERT OR IGNORE`` on
``(subscription, notice)``, so a replayed alert queues nothing new), and only then lets the
batch's offsets be committed: nothing is lost when the worker dies, and a replay does not
queue twice. A sender then works the queue: a row becomes ``sent`` (or ``delivered``) only
after the server accepted it, in the same SQLite transaction that records when. So a restart
neither loses nor resends, except in one window: the worker dies after the server accepted a
message and before SQLite recorded it; that message goes again, with the same
``Message-ID`` / ``X-Broker-Delivery``, which a receiver can use to drop it.

Tables::

    email_queue(subscription, notice, to_addr, body, created, state, period, sent_at,
                attempts, last_error)        state: new | sent | held | digested | dropped
    digests(subscription, period, to_addr, notices, sent_at)   one row per digest sent
    unsubscribed(subscription, at)
    webhook_queue(subscription, notice, body, created, state, attempts, next_at,
                  last_status, last_error, done_at)           state: new | delivered | dead
    webhook_attempts(subscription, notice, attempt, at, status, error)

Every statement uses bound parameters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Ledger"]

_COUNTS = {
    "email_queue": "SELECT state, COUNT(*) FROM email_queue GROUP BY state",
    "webhook_queue": "SELECT state, COUNT(*) FROM webhook_queue GROUP BY state",
}
_OLDEST = {
    "email_queue": "SELECT MIN(created) FROM email_queue WHERE state IN ('new', 'held')",
    "webhook_queue": "SELECT MIN(created) FROM webhook_queue WHERE state = 'new'",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS email_queue (
    subscription TEXT NOT NULL, notice TEXT NOT NULL, to_addr TEXT NOT NULL,
    body TEXT NOT NULL, created REAL NOT NULL, state TEXT NOT NULL, period INTEGER,
    sent_at REAL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    PRIMARY KEY (subscription, notice));
CREATE INDEX IF NOT EXISTS email_state ON email_queue (state, created);
CREATE INDEX IF NOT EXISTS email_sent ON email_queue (to_addr, sent_at);
CREATE TABLE IF NOT EXISTS digests (
    subscription TEXT NOT NULL, period INTEGER NOT NULL, to_addr TEXT NOT NULL,
    notices INTEGER NOT NULL, sent_at REAL NOT NULL, PRIMARY KEY (subscription, period));
CREATE TABLE IF NOT EXISTS unsubscribed (subscription TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_queue (
    subscription TEXT NOT NULL, notice TEXT NOT NULL, body BLOB NOT NULL,
    created REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, last_status INTEGER, last_error TEXT, done_at REAL,
    PRIMARY KEY (subscription, notice));
CREATE INDEX IF NOT EXISTS webhook_due ON webhook_queue (state, next_at);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    subscription TEXT NOT NULL, notice TEXT NOT NULL, attempt INTEGER NOT NULL,
    at REAL NOT NULL, status INTEGER, error TEXT,
    PRIMARY KEY (subscription, notice, attempt));
"""


class Ledger:
    """One notifier's delivery ledger (see the module docstring).

    Parameters
    ----------
    path : Path
        The SQLite file (its folder is created).
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            before = self.db.total_changes
            self.db.executemany(sql, rows)
            return self.db.total_changes - before

    # ----------------------------------------------------------------------------- email

    def queue_emails(self, rows: Iterable[tuple[str, str, str, str, float, str]]) -> int:
        """Queue ``(subscription, notice, to, body, created, state)`` rows; return how many new.

        ``state`` is ``new`` (per-alert) or ``held`` (digest only, its period set later).
        """
        return self._many(
            "INSERT OR IGNORE INTO email_queue "
            "(subscription, notice, to_addr, body, created, state) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def emails(self, state: str) -> list[sqlite3.Row]:
        """Return the queued emails in ``state``, oldest first."""
        return self.db.execute(
            "SELECT * FROM email_queue WHERE state = ? ORDER BY created, rowid", (state,)
        ).fetchall()

    def sent_times(self, to_addr: str, since: float) -> list[float]:
        """Return when per-alert emails were sent to ``to_addr`` after ``since``."""
        rows = self.db.execute(
            "SELECT sent_at FROM email_queue WHERE to_addr = ? AND state = 'sent' AND sent_at > ?",
            (to_addr, since),
        ).fetchall()
        return [r[0] for r in rows]

    def mark_email(
        self,
        subscription: str,
        notice: str,
        state: str,
        period: int | None = None,
        sent_at: float | None = None,
    ) -> None:
        """Set one queued email's state (and its digest period or sent time, when given)."""
        with self.db:
            self.db.execute(
                "UPDATE email_queue SET state = ?, period = COALESCE(?, period), "
                "sent_at = COALESCE(?, sent_at) WHERE subscription = ? AND notice = ?",
                (state, period, sent_at, subscription, notice),
            )

    def email_failed(self, subscription: str, notice: str, error: str) -> None:
        """Count a failed attempt of one email (it stays queued)."""
        with self.db:
            self.db.execute(
                "UPDATE email_queue SET attempts = attempts + 1, last_error = ? "
                "WHERE subscription = ? AND notice = ?",
                (error, subscription, notice),
            )

    def digest_sent(self, subscription: str, period: int) -> bool:
        """Whether the digest of ``(subscription, period)`` went already."""
        row = self.db.execute(
            "SELECT 1 FROM digests WHERE subscription = ? AND period = ?", (subscription, period)
        ).fetchone()
        return row is not None

    def record_digest(
        self, subscription: str, period: int, to_addr: str, notices: Sequence[str], at: float
    ) -> None:
        """Record a digest as sent and its notices as digested, in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR IGNORE INTO digests VALUES (?, ?, ?, ?, ?)",
                (subscription, period, to_addr, len(notices), at),
            )
            self.db.executemany(
                "UPDATE email_queue SET state = 'digested', sent_at = ? "
                "WHERE subscription = ? AND notice = ?",
                [(at, subscription, n) for n in notices],
            )

    def digests(self) -> list[sqlite3.Row]:
        """Return every digest sent."""
        return self.db.execute("SELECT * FROM digests ORDER BY sent_at").fetchall()

    def unsubscribe(self, subscription: str, at: float) -> None:
        """Record an unsubscription (idempotent)."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO unsubscribed VALUES (?, ?)", (subscription, at))

    def unsubscribed(self) -> set[str]:
        """Return the subscriptions unsubscribed."""
        return {r[0] for r in self.db.execute("SELECT subscription FROM unsubscribed")}

    # --------------------------------------------------------------------------- webhooks

    def queue_webhooks(self, rows: Iterable[tuple[str, str, bytes, float]]) -> int:
        """Queue ``(subscription, notice, body, created)`` rows; return how many are new."""
        return self._many(
            "INSERT OR IGNORE INTO webhook_queue "
            "(subscription, notice, body, created, state, next_at) VALUES (?, ?, ?, ?, 'new', ?)",
            ((s, n, b, c, c) for s, n, b, c in rows),
        )

    def due_webhooks(self, now: float, limit: int) -> list[sqlite3.Row]:
        """Return up to ``limit`` webhooks due for an attempt, oldest first."""
        return self.db.execute(
            "SELECT * FROM webhook_queue WHERE state = 'new' AND next_at <= ? "
            "ORDER BY next_at, created, rowid LIMIT ?",
            (now, limit),
        ).fetchall()

    def webhook_attempt(
        self,
        subscription: str,
        notice: str,
        at: float,
        status: int | None,
        error: str | None,
        state: str,
        next_at: float,
    ) -> int:
        """Record one attempt and the delivery's new state; return its attempt number."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            (attempt,) = self.db.execute(
                "SELECT attempts + 1 FROM webhook_queue WHERE subscription = ? AND notice = ?",
                (subscription, notice),
            ).fetchone()
            self.db.execute(
                "INSERT OR REPLACE INTO webhook_attempts VALUES (?, ?, ?, ?, ?, ?)",
                (subscription, notice, attempt, at, status, error),
            )
            self.db.execute(
                "UPDATE webhook_queue SET attempts = ?, state = ?, next_at = ?, "
                "last_status = ?, last_error = ?, done_at = ? "
                "WHERE subscription = ? AND notice = ?",
                (
                    attempt,
                    state,
                    next_at,
                    status,
                    error,
                    at if state != "new" else None,
                    subscription,
                    notice,
                ),
            )
        return int(attempt)

    def webhooks(self, state: str | None = None) -> list[sqlite3.Row]:
        """Return the webhook deliveries (in ``state``)."""
        if state is None:
            return self.db.execute("SELECT * FROM webhook_queue ORDER BY created").fetchall()
        return self.db.execute(
            "SELECT * FROM webhook_queue WHERE state = ? ORDER BY created", (state,)
        ).fetchall()

    def attempts(self, subscription: str, notice: str) -> list[sqlite3.Row]:
        """Return the attempts of one delivery, in order."""
        return self.db.execute(
            "SELECT * FROM webhook_attempts WHERE subscription = ? AND notice = ? ORDER BY attempt",
            (subscription, notice),
        ).fetchall()

    # ----------------------------------------------------------------------------- status

    def counts(self, table: str) -> dict[str, int]:
        """Return rows per state of ``email_queue`` or ``webhook_queue``."""
        rows = self.db.execute(_COUNTS[table])
        return {r[0]: r[1] for r in rows}

    def oldest_pending(self, table: str) -> float | None:
        """Return the creation time of the oldest row not yet sent (new or held)."""
        return self.db.execute(_OLDEST[table]).fetchone()[0]
