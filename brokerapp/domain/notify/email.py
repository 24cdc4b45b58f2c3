"""Email messages of notices: one per alert, and digests; unsubscribe tokens; periods.

Every message is ``multipart/alternative``: a plain-text part and an HTML part; the HTML
part is ``multipart/related`` with each object's light curve as an inline PNG
(``Content-ID`` ``<lc-<object>@broker>``, drawn by
:func:`brokerapp.domain.lightcurve.light_curve_figure` from the notice's detections).
Headers: ``Message-ID`` derived from what the message is (subscription, notice or digest
period), so a message sent again after a crash carries the same ID; ``List-Unsubscribe``
and a link at the foot of both parts to ``<public URL>/email/unsubscribe?s=<subscription>
&t=<token>``, the token an HMAC-SHA256 of the subscription ID under the unsubscribe secret.

Digests: the period of a time ``t`` is ``floor(t / period)``; a digest of period ``p``
holds what the subscription's rate limit or its ``digest_only`` held back, and is due once
``p`` has ended (:func:`digest_due`). The rate limit (:func:`within_limit`) counts the
per-alert emails sent to a recipient in the last window.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import io
import math
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlencode

from brokerapp.domain.lightcurve import light_curve_figure
from brokerapp.domain.notify.notices import Notice

__all__ = [
    "MessageSettings",
    "alert_message",
    "digest_due",
    "digest_message",
    "light_curve_png",
    "period_of",
    "unsubscribe_token",
    "unsubscribe_url",
    "verify_unsubscribe",
    "within_limit",
]

PNG_DPI = 80
"""Resolution of the inline light curves (a 6x3.5 inch figure: 480x280 pixels)."""


class MessageSettings:
    """What every message of one broker carries (sender, links, unsubscribe key)."""

    def __init__(self, sender: str, public_url: str, secret: bytes, alert_url_template: str):
        self.sender = sender
        self.public_url = public_url.rstrip("/")
        self.secret = secret
        self.alert_url_template = alert_url_template

    def alert_url(self, notice: Notice) -> str:
        """Return the link back to the notice's alert."""
        return self.alert_url_template.format(
            survey=notice.survey, alert_id=notice.alert_id, object_id=notice.object_id or ""
        )


def unsubscribe_token(secret: bytes, subscription_id: str) -> str:
    """Return the HMAC-SHA256 (hex) of a subscription ID: the proof in its links."""
    return hmac.new(secret, subscription_id.encode(), hashlib.sha256).hexdigest()


def verify_unsubscribe(secret: bytes, subscription_id: str, token: str) -> bool:
    """Whether ``token`` is the subscription's (constant-time comparison)."""
    return hmac.compare_digest(unsubscribe_token(secret, subscription_id), token)


def unsubscribe_url(settings: MessageSettings, subscription_id: str) -> str:
    """Return the unsubscribe link of a subscription."""
    query = urlencode(
        {"s": subscription_id, "t": unsubscribe_token(settings.secret, subscription_id)}
    )
    return f"{settings.public_url}/email/unsubscribe?{query}"


def period_of(t: float, period_s: float) -> int:
    """Return the digest period holding time ``t`` (s since the epoch)."""
    return math.floor(t / period_s)


def digest_due(period: int, now: float, period_s: float) -> bool:
    """Whether the digest of ``period`` may go: the period has ended."""
    return now >= (period + 1) * period_s


def within_limit(sent_times: Iterable[float], now: float, limit: int, window_s: float) -> bool:
    """Whether one more per-alert email may go to a recipient.

    Parameters
    ----------
    sent_times : iterable of float
        When the recipient's per-alert emails were sent (s since the epoch).
    now : float
        The current time.
    limit : int
        Most per-alert emails per window.
    window_s : float
        The window (s).
    """
    return sum(1 for t in sent_times if t > now - window_s) < limit


def light_curve_png(notice: Notice) -> bytes | None:
    """Return the notice's light curve as PNG bytes (None without detections)."""
    points = [p for p in notice.light_curve if p.get("mag") is not None]
    if not points:
        return None
    rows = [dict(p, survey=notice.survey) for p in notice.light_curve]
    figure = light_curve_figure(rows, notice.object_id or str(notice.alert_id), size=(6.0, 3.5))
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=PNG_DPI)
    return out.getvalue()


def _match_lines(notice: Notice) -> list[str]:
    return [
        f"{m.source}: {m.entry} at {m.separation_arcsec:.2f} arcsec"
        + ("".join(f", {k}={v}" for k, v in sorted(m.detail.items())) if m.detail else "")
        for m in notice.matches
    ]


def _summary(notice: Notice) -> str:
    mjd = "-" if notice.mjd is None else f"{notice.mjd:.5f}"
    return (
        f"{notice.survey} alert {notice.alert_id}, object {notice.object_id or '-'}, "
        f"RA {notice.ra:.6f} Dec {notice.dec:+.6f} deg, MJD {mjd}"
    )


def _cid(notice: Notice) -> str:
    name = "".join(c if c.isalnum() else "-" for c in (notice.object_id or str(notice.alert_id)))
    return f"lc-{name}@broker"


def _build(
    settings: MessageSettings,
    to: str,
    subject: str,
    message_id: str,
    text: str,
    html_body: str,
    images: Sequence[tuple[str, bytes]],
    subscription_id: str,
    date: float,
) -> EmailMessage:
    link = unsubscribe_url(settings, subscription_id)
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = formatdate(date, usegmt=True)
    message["List-Unsubscribe"] = f"<{link}>"
    message.set_content(f"{text}\n\nUnsubscribe: {link}\n")
    message.add_alternative(
        f'<html><body>{html_body}<p><a href="{html.escape(link)}">Unsubscribe</a></p>'
        "</body></html>",
        subtype="html",
    )
    html_part = message.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    for cid, png in images:
        html_part.add_related(png, "image", "png", cid=f"<{cid}>", filename=f"{cid}.png")
    return message


def alert_message(
    settings: MessageSettings, subscription_id: str, to: str, notice: Notice, date: float
) -> EmailMessage:
    """Return the email of one notice to one subscriber.

    Parameters
    ----------
    settings : MessageSettings
        Sender, links, unsubscribe key.
    subscription_id : str
        The subscription (Message-ID and unsubscribe link).
    to : str
        The recipient.
    notice : Notice
        The notice, its matches those of the subscription.
    date : float
        The ``Date`` header (s since the epoch).
    """
    entries = ", ".join(sorted({m.entry for m in notice.matches}))
    sources = ", ".join(sorted({m.source for m in notice.matches}))
    subject = f"[broker] {sources}: {notice.object_id or notice.alert_id} near {entries}"
    png = light_curve_png(notice)
    url = settings.alert_url(notice)
    text = "\n".join([_summary(notice), *_match_lines(notice), f"Alert: {url}"])
    matches = "".join(f"<li>{html.escape(line)}</li>" for line in _match_lines(notice))
    image = f'<p><img src="cid:{_cid(notice)}" alt="light curve"></p>' if png else ""
    body = (
        f"<p>{html.escape(_summary(notice))}</p><ul>{matches}</ul>{image}"
        f'<p><a href="{html.escape(url)}">The alert</a></p>'
    )
    return _build(
        settings,
        to,
        subject,
        f"<{subscription_id}.{notice.key}@broker>",
        text,
        body,
        [(_cid(notice), png)] if png else [],
        subscription_id,
        date,
    )


def digest_message(
    settings: MessageSettings,
    subscription_id: str,
    to: str,
    period: int,
    period_s: float,
    notices: Sequence[Notice],
    max_plots: int,
) -> EmailMessage:
    """Return the digest of one period for one subscriber.

    Parameters
    ----------
    settings : MessageSettings
        Sender, links, unsubscribe key.
    subscription_id : str
        The subscription.
    to : str
        The recipient.
    period : int
        The digest's period (:func:`period_of`).
    period_s : float
        The period's length (s): the digest is dated at its end.
    notices : sequence of Notice
        What the period held back, in order.
    max_plots : int
        Most light curves (distinct objects) shown.
    """
    end = (period + 1) * period_s
    subject = f"[broker] digest: {len(notices)} alert(s) for {subscription_id}"
    lines: list[str] = []
    rows: list[str] = []
    images: list[tuple[str, bytes]] = []
    seen: set[str | None] = set()
    for notice in notices:
        url = settings.alert_url(notice)
        lines.append(f"- {_summary(notice)}")
        lines += [f"    {line}" for line in _match_lines(notice)]
        lines.append(f"    {url}")
        cell = "<br>".join(html.escape(line) for line in _match_lines(notice))
        rows.append(
            f'<tr><td><a href="{html.escape(url)}">{notice.alert_id}</a></td>'
            f"<td>{html.escape(notice.object_id or '-')}</td><td>{cell}</td></tr>"
        )
        if len(images) < max_plots and notice.object_id not in seen:
            png = light_curve_png(notice)
            if png is not None:
                seen.add(notice.object_id)
                images.append((_cid(notice), png))
    pictures = "".join(f'<p><img src="cid:{cid}" alt="light curve"></p>' for cid, _ in images)
    body = (
        f"<p>{len(notices)} alert(s) held for this digest.</p>"
        f"<table><tr><th>alert</th><th>object</th><th>matches</th></tr>{''.join(rows)}</table>"
        f"{pictures}"
    )
    text = "\n".join([f"{len(notices)} alert(s) held for this digest:", *lines])
    return _build(
        settings,
        to,
        subject,
        f"<{subscription_id}.digest-{period}@broker>",
        text,
        body,
        images,
        subscription_id,
        end,
    )
