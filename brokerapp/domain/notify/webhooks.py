"""Webhook payloads and their signatures.

The body POSTed for one notice to one subscription is JSON::

    {"subscription": "<ID>", "notice": <Notice.to_json() without the light curve>,
     "alert_url": "..."}

or, for a Slack-compatible subscription, ``{"text": "<one line per match>"}`` (Slack's
incoming-webhook format; Mattermost and Discord's ``/slack`` endpoint take it too).

Headers: ``X-Broker-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes under the
subscription's secret>``, ``X-Broker-Delivery: <subscription>:<notice key>`` (the same on
every retry, so a receiver can drop repeats) and ``Content-Type: application/json``. A
receiver recomputes the HMAC over the raw body and compares in constant time
(:func:`verify`).
"""

from __future__ import annotations

import hashlib
import hmac

from brokerapp.domain.notify.notices import Notice
from brokerapp.wire import records

__all__ = ["SIGNATURE_HEADER", "DELIVERY_HEADER", "body", "headers", "sign", "verify"]

SIGNATURE_HEADER = "X-Broker-Signature"
DELIVERY_HEADER = "X-Broker-Delivery"


def body(subscription_id: str, notice: Notice, alert_url: str, slack: bool = False) -> bytes:
    """Return the JSON body of one delivery (see the module docstring)."""
    if slack:
        lines = [
            f"*{notice.object_id or notice.alert_id}* ({notice.survey} alert "
            f"<{alert_url}|{notice.alert_id}>) at RA {notice.ra:.5f} Dec {notice.dec:+.5f}"
        ]
        lines += [
            f"- {m.source}: {m.entry} at {m.separation_arcsec:.2f} arcsec" for m in notice.matches
        ]
        return records.dumps({"text": "\n".join(lines)})
    data = notice.to_json()
    data.pop("light_curve")
    return records.dumps({"subscription": subscription_id, "notice": data, "alert_url": alert_url})


def sign(secret: str, payload: bytes) -> str:
    """Return the signature header's value: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def verify(secret: str, payload: bytes, signature: str) -> bool:
    """Whether ``signature`` is :func:`sign` of ``payload`` (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, payload), signature)


def headers(secret: str, delivery_id: str, payload: bytes) -> dict[str, str]:
    """Return the headers of one POST."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, payload),
        DELIVERY_HEADER: delivery_id,
    }
