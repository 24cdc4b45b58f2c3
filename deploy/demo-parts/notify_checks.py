"""Steps of ``deploy/demo-parts/notify.sh`` that are easier in Python than in shell.

``python deploy/demo-parts/notify_checks.py settle VOEVENT_PORT EMAIL_PORT WEBHOOKS_PORT``
    Waits (up to 3 minutes) until the notifiers have notified something and nothing has
    changed for 8 s (packets written, emails sent, queues drained), then prints their counts.
``python deploy/demo-parts/notify_checks.py voevents DIR``
    Lists the VOEvents a Comet subscriber saved in DIR: IVORN, position, time, matches;
    each checked against the VOEvent 2.0 schema.
``python deploy/demo-parts/notify_checks.py mail MAILDIR``
    Lists the emails an aiosmtpd Mailbox received: recipient, subject, parts.
"""

from __future__ import annotations

import json
import mailbox
import sys
import time
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

from lxml import etree

from brokerapp.domain.notify.voevent import VOEventError, validate


def status(name: str, port: str) -> dict:
    """Return a worker's status JSON (empty if it does not answer)."""
    try:
        url = f"http://127.0.0.1:{port}/{name}/status.json"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except OSError:
        return {}


def settle(ports: list[str]) -> None:
    """Wait until the notifiers' counts are non-zero and stop changing."""
    names = ("voevent", "email", "webhooks")
    last, since = None, time.monotonic()
    for _ in range(180):
        now = [status(n, p) for n, p in zip(names, ports, strict=True)]
        counts = [(s.get("written"), s.get("backlog"), s.get("received")) for s in now]
        if counts != last:
            last, since = counts, time.monotonic()
        elif (now[0].get("written") or 0) > 0 and time.monotonic() - since > 8:
            for name, s in zip(names, now, strict=True):
                keys = ("received", "written", "bytes", "failures", "backlog")
                print(f"{name:9s}", {k: s.get(k) for k in keys})
            return
        time.sleep(1)
    sys.exit("the notifiers did not settle")


def voevents(folder: str) -> None:
    """List and check the saved VOEvents."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    print(f"{len(files)} VOEvent(s) received by Comet")
    if not files:
        sys.exit("no VOEvent reached the VTP subscriber")
    for path in files:
        data = path.read_bytes()
        try:
            validate(data)
            verdict = "schema-valid"
        except VOEventError as exc:
            verdict = f"INVALID: {exc}"
        doc = etree.fromstring(data)
        pos = doc.find(".//Position2D/Value2")
        entries = [
            f"{g.get('type')}={p.get('value')}"
            for g in doc.iter("Group")
            for p in g.iter("Param")
            if p.get("name") == "entry"
        ]
        print(
            f"  {doc.get('ivorn')}  RA {pos.findtext('C1')} Dec {pos.findtext('C2')}"
            f"  {doc.findtext('.//ISOTime')}  {', '.join(entries)}  [{verdict}]"
        )


def mail(folder: str) -> None:
    """List the received emails."""
    box = mailbox.Maildir(folder, create=False)
    messages = [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]
    print(f"{len(messages)} email(s) received by the SMTP server")
    if not messages:
        sys.exit("no email reached the SMTP server")
    for m in sorted(messages, key=lambda m: m["Subject"]):
        kinds = [p.get_content_type() for p in m.walk() if not p.is_multipart()]
        print(f"  to {m['To']}: {m['Subject']}  ({', '.join(kinds)})")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {
        "settle": lambda: settle(args),
        "voevents": lambda: voevents(args[0]),
        "mail": lambda: mail(args[0]),
    }[command]()
