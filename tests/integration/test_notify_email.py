"""Emails and digests through a real SMTP server (aiosmtpd, started here), parsed back.

The email sender (:class:`brokerapp.runtime.notify.EmailSender`, as the email worker's timer
runs it) works a real ledger file with notices of real sample alerts, through
:class:`brokerapp.adapters.notify.smtp.SmtpSender` (aiosmtplib). Times are passed to
``work(now)`` so the rate-limit window and the digest periods are the test's, not the
wall clock's. What the server accepted is parsed with the stdlib email parser and checked
as a recipient would: the parts, the inline PNG its HTML refers to, the unsubscribe link.
"""

from __future__ import annotations

import json
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, urlparse

import pytest
import trustme

from brokerapp.adapters.notify.ledger import Ledger
from brokerapp.domain.notify.email import verify_unsubscribe
from brokerapp.domain.notify.notices import from_annotated
from brokerapp.model.settings import load_settings
from brokerapp.runtime.notify import EmailSender, SubscriptionFile
from tests.agents.harness import is_solar, samples

from .notify_servers import SmtpServer

PERIOD = 100.0
T0 = 1_800_000_000.0  # the start of a digest period (a multiple of PERIOD)


def notices(n):
    out = []
    for sample in [s for s in samples("ztf") if not is_solar(s)][:n]:
        annotation = {
            "alert_id": sample.record["candidate"]["candid"],
            "object_id": sample.record["objectId"],
            "watchlist_id": "wl1",
            "entry": "SN 2026abc",
            "separation_arcsec": 0.8,
            "mjd": None,
        }
        out.append(from_annotated({"alert": sample.record, "annotations": [annotation]}))
    return out


def setup(tmp_path, port, limit=2, **extra):
    subs = tmp_path / "subs.toml"
    subs.write_text('[[email]]\nid = "alice-wl1"\nto = "alice@example.org"\nwatchlists = ["wl1"]\n')
    settings = load_settings(
        home=tmp_path,
        smtp_port=port,
        email_rate_limit=limit,
        email_rate_window_seconds=3600.0,
        email_digest_seconds=PERIOD,
        notify_subscriptions=subs,
        notify_retry_backoff=5.0,
        notify_retry_backoff_max=5.0,
        email_unsubscribe_secret="unsub-key",
        **extra,
    )
    ledger = Ledger(tmp_path / "email.sqlite")
    return settings, ledger, SubscriptionFile(subs)


def queue(ledger, items, created=T0):
    rows = [
        ("alice-wl1", n.key, "alice@example.org", json.dumps(n.to_json()), created, "new")
        for n in items
    ]
    return ledger.queue_emails(rows)


def parts(message: EmailMessage):
    return {p.get_content_type(): p for p in message.walk() if not p.is_multipart()}


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


async def test_alerts_within_the_rate_limit_then_one_digest_per_period(tmp_path, smtp):
    settings, ledger, subs = setup(tmp_path, smtp.port, limit=2)
    items = notices(5)
    assert queue(ledger, items) == 5
    assert queue(ledger, items) == 0  # a replayed batch queues nothing
    sender = EmailSender(settings, ledger, subs)

    await sender.work(T0 + 1)
    assert len(smtp.messages) == 2  # the limit; three held for the digest
    await sender.work(T0 + 50)
    assert len(smtp.messages) == 2  # the period has not ended
    await sender.work(T0 + PERIOD + 1)
    await sender.work(T0 + PERIOD + 2)
    assert len(smtp.messages) == 3  # one digest, not two

    for (rcpt, message), notice in zip(smtp.messages[:2], items[:2], strict=True):
        assert rcpt == ["alice@example.org"]
        assert notice.object_id in message["Subject"]
        p = parts(message)
        assert set(p) == {"text/plain", "text/html", "image/png"}
        assert str(notice.alert_id) in p["text/plain"].get_content()
        png = p["image/png"]
        assert png.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
        cid = png["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in p["text/html"].get_content()
        link = message["List-Unsubscribe"].strip("<>")
        query = parse_qs(urlparse(link).query)
        assert query["s"] == ["alice-wl1"]
        assert verify_unsubscribe(b"unsub-key", "alice-wl1", query["t"][0])
        assert link in p["text/plain"].get_content()
    _rcpt, digest = smtp.messages[2]
    assert "digest" in digest["Subject"] and "3 alert(s)" in digest["Subject"]
    text = parts(digest)["text/plain"].get_content()
    for notice in items[2:]:
        assert str(notice.alert_id) in text
    for notice in items[:2]:
        assert str(notice.alert_id) not in text
    ids = [m["Message-ID"] for _r, m in smtp.messages]
    assert len(set(ids)) == 3

    # The next period: two more alerts; the window still holds two sent, so both are held
    # and folded into that period's digest.
    more = notices(7)[5:]
    queue(ledger, more, created=T0 + PERIOD + 10)
    await sender.work(T0 + PERIOD + 11)
    assert len(smtp.messages) == 3
    await sender.work(T0 + 2 * PERIOD + 1)
    assert len(smtp.messages) == 4
    assert "2 alert(s)" in smtp.messages[3][1]["Subject"]
    assert [d["notices"] for d in ledger.digests()] == [3, 2]


async def test_a_server_down_or_refusing_loses_nothing_and_sends_nothing_twice(tmp_path):
    server = SmtpServer()
    settings, ledger, subs = setup(tmp_path, server.port, limit=10)
    items = notices(3)
    queue(ledger, items)
    sender = EmailSender(settings, ledger, subs)

    await sender.work(T0)  # nothing listens
    assert sender.status()["failures"] == 1
    assert "Connect" in sender.status()["last_error"] or "refused" in sender.status()["last_error"]
    assert len(ledger.emails("new")) == 3

    server.start()
    try:
        server.handler.refuse = True
        await sender.work(T0 + 1)  # within the backoff: not even tried
        assert sender.status()["failures"] == 1
        await sender.work(T0 + 6)
        assert sender.status()["failures"] == 2
        assert "451" in sender.status()["last_error"]
        assert server.messages == [] and len(ledger.emails("new")) == 3

        server.handler.refuse = False
        await sender.work(T0 + 12)
        assert len(server.messages) == 3
        # A restarted worker (a new sender on the same ledger file) sends nothing again.
        restarted = EmailSender(settings, Ledger(tmp_path / "email.sqlite"), subs)
        await restarted.work(T0 + 20)
        await sender.work(T0 + 21)
    finally:
        server.stop()
    ids = [m["Message-ID"] for _r, m in server.messages]
    assert sorted(ids) == sorted(f"<alice-wl1.{n.key}@broker>" for n in items)


async def test_starttls_and_authentication(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = SmtpServer(tls_context=server_context, credentials=("broker", "pa55"))
    server.start()
    try:
        common = {"smtp_starttls": True, "smtp_tls_ca_file": ca_file, "smtp_user": "broker"}
        settings, ledger, subs = setup(tmp_path, server.port, smtp_password="wrong", **common)
        queue(ledger, notices(1))
        sender = EmailSender(settings, ledger, subs)
        await sender.work(T0)
        assert server.messages == [] and sender.status()["failures"] == 1
        assert "wrong" not in (sender.status()["last_error"] or "")

        settings = settings.model_copy(
            update={"smtp_password": load_settings(smtp_password="pa55").smtp_password}
        )
        sender = EmailSender(settings, ledger, subs)
        await sender.work(T0 + 10)
        no_tls = settings.model_copy(update={"smtp_starttls": False, "smtp_user": ""})
        queue(ledger, notices(2)[1:])
        await EmailSender(no_tls, ledger, subs).work(T0 + 20)  # refused: STARTTLS required
    finally:
        server.stop()
    assert len(server.messages) == 1 and server.handler.logins == ["broker"]
    assert len(ledger.emails("new")) == 1  # the plain-text attempt is still queued


async def test_an_unsubscribed_recipient_gets_nothing_more(tmp_path, smtp):
    settings, ledger, subs = setup(tmp_path, smtp.port)
    queue(ledger, notices(1))
    ledger.unsubscribe("alice-wl1", T0)
    await EmailSender(settings, ledger, subs).work(T0 + 1)
    assert smtp.messages == []
    assert [r["state"] for r in ledger.emails("dropped")] == ["dropped"]


@pytest.mark.usefixtures("services")
async def test_the_email_worker_unsubscribe_link_works_and_a_forged_one_does_not(tmp_path):
    import urllib.error
    import urllib.request

    from brokerapp.domain.notify.email import unsubscribe_url

    from .workers import WorkerRun

    run = WorkerRun(
        tmp_path, module="agents.email_notify", path="email", port_setting="BROKER_EMAIL_WEB_PORT"
    )
    run.env_overrides.update(
        {
            "BROKER_ANNOTATED_ALERTS_TOPIC": f"{run.prefix}-annotated-alerts",
            "BROKER_ANNOTATIONS_TOPIC": f"{run.prefix}-annotations",
            "BROKER_NOTIFY_STATE_DIR": str(tmp_path / "notify"),
            "BROKER_EMAIL_UNSUBSCRIBE_SECRET": "worker-key",
            "BROKER_EMAIL_PUBLIC_URL": f"http://127.0.0.1:{run.port}",
        }
    )
    settings = load_settings(
        email_unsubscribe_secret="worker-key", email_public_url=f"http://127.0.0.1:{run.port}"
    )
    from brokerapp.runtime.notify import message_settings

    link = unsubscribe_url(message_settings(settings), "alice-wl1")
    forged = link.replace("alice-wl1", "bob-wl1")
    try:
        run.start()
        with urllib.request.urlopen(link, timeout=10) as response:
            assert response.status == 200 and b"Unsubscribed: alice-wl1" in response.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 403
        status = run.status()
    finally:
        run.stop()
    assert status["unsubscribed"] == 1
    assert Ledger(tmp_path / "notify" / "email.sqlite").unsubscribed() == {"alice-wl1"}
