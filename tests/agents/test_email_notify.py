"""The email worker in memory: what a batch queues in the ledger, once, replay or not.

SMTP is a server: ``tests/integration/test_notify.py`` sends these rows through a real
aiosmtpd server and parses what it receives.
"""

import json

from agents.email_notify import build

from .harness import prepare, run_agent
from .notify_inputs import feed_inputs, nonsolar_ztf, write_subscriptions


async def test_each_matching_subscription_gets_one_row_and_a_replay_adds_none(
    settings, registry, tmp_path
):
    settings = settings.model_copy(update={"notify_subscriptions": write_subscriptions(tmp_path)})
    ztf = nonsolar_ztf(2)
    app = build(settings)
    sent = prepare(app)
    for _ in range(2):  # the second pass is a replay of the same records
        async with run_agent(app, "process", settings.annotated_alerts_topic) as feed:
            await feed_inputs(feed, settings, registry, annotated=ztf, crossmatched=ztf[:1])

    new = app.ledger.emails("new")
    held = app.ledger.emails("held")
    alice = sorted((r["subscription"], r["notice"], r["to_addr"]) for r in new)
    assert alice == sorted(
        ("alice-wl1", f"watchlist-{s.record['candidate']['candid']}", "alice@example.org")
        for s in ztf
    )
    assert [(r["subscription"], r["to_addr"]) for r in held] == [("bob-bright", "bob@example.org")]
    first = f"watchlist-{ztf[0].record['candidate']['candid']}"
    body = json.loads(next(r["body"] for r in new if r["notice"] == first))
    c = ztf[0].record["candidate"]
    assert (body["ra"], body["dec"], body["object_id"]) == (
        c["ra"],
        c["dec"],
        ztf[0].record["objectId"],
    )
    expected_points = 1 + len([p for p in ztf[0].record["prv_candidates"] if p["candid"]])
    assert len(body["light_curve"]) == expected_points
    assert len(sent.on(f"{settings.topic_prefix}email-deadletter")) == 4  # garbage, twice
    assert app.status()["backlog"] == 3
