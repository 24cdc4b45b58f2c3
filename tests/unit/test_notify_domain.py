"""The notifiers' pure parts: VTP framing, transport messages, signatures, periods, files."""

import hashlib
import hmac

import pytest

from brokerapp.domain.notify import email as mail
from brokerapp.domain.notify import webhooks as hooks
from brokerapp.domain.notify.notices import Match, Notice, NoticeError, from_crossmatch
from brokerapp.domain.notify.subscriptions import SubscriptionError, parse_subscriptions
from brokerapp.domain.notify.voevent import (
    Deframer,
    VOEventError,
    frame,
    mjd_to_iso,
    parse_transport,
    transport,
    validate,
)

NOTICE = Notice(
    "crossmatch", "ztf", 5, "ZTF1", 1.0, 2.0, 60000.0, (Match("catalogue:b", None, "7", 0.5),)
)


def test_vtp_frames_are_a_big_endian_length_then_the_message_and_split_anywhere():
    messages = [b"<a/>", b"<bb/>" * 300, b"<c/>"]
    stream = b"".join(frame(m) for m in messages)
    assert stream[:4] == b"\x00\x00\x00\x04"
    deframer = Deframer()
    out = []
    for i in range(0, len(stream), 7):  # arbitrary cuts, as a socket delivers
        out += deframer.feed(stream[i : i + 7])
    assert out == messages


def test_a_huge_announced_length_is_a_protocol_error():
    with pytest.raises(VOEventError):
        Deframer().feed(b"\xff\xff\xff\xff")


def test_transport_messages_are_valid_and_read_back():
    ack = transport("ack", "ivo://a/b#c", "ivo://me")
    validate(ack, "transport-1.1.xsd")
    read = parse_transport(ack)
    assert (read.role, read.origin, read.response) == ("ack", "ivo://a/b#c", "ivo://me")
    assert parse_transport(b"<x:VOEvent xmlns:x='urn:x'/>") is None


def test_mjd_to_iso_utc_and_lsst_tai():
    assert mjd_to_iso(40587.5, "ztf") == "1970-01-01T12:00:00.000000"
    assert mjd_to_iso(40587.5, "lsst") == "1970-01-01T11:59:23.000000"  # TAI - 37 s


def test_webhook_signature_is_hmac_sha256_of_the_exact_body():
    body = hooks.body("s1", NOTICE, "http://x")
    expected = "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert hooks.headers("key", "s1:n", body)["X-Broker-Signature"] == expected
    assert hooks.verify("key", body, expected)
    assert not hooks.verify("key", body + b" ", expected)
    assert set(__import__("json").loads(hooks.body("s1", NOTICE, "u", slack=True))) == {"text"}


def test_digest_periods_and_the_rate_limit():
    assert mail.period_of(250.0, 100.0) == 2
    assert not mail.digest_due(2, 299.9, 100.0) and mail.digest_due(2, 300.0, 100.0)
    assert mail.within_limit([10.0, 20.0], 30.0, 3, 60.0)
    assert not mail.within_limit([10.0, 20.0, 25.0], 30.0, 3, 60.0)
    assert mail.within_limit([10.0, 20.0, 25.0], 100.0, 3, 60.0)  # out of the window


def test_crossmatch_records_need_a_position_watchlist_annotations_are_skipped():
    record = {
        "survey": "ztf",
        "alert_id": 1,
        "object_id": "Z",
        "annotations": {
            "catalogue_match": {"catalogue": "b", "matches": [{"id": 3, "separation_arcsec": 1.0}]}
        },
    }
    with pytest.raises(NoticeError):
        from_crossmatch(record)
    notice = from_crossmatch({**record, "ra": 361.0, "dec": -5.0, "mjd": 1.0})
    assert (notice.ra, notice.key, notice.sources) == (1.0, "crossmatch-1", {"catalogue:b"})
    assert from_crossmatch({"watchlist_id": "w", "alert_id": 1}) is None
    assert Notice.from_json(notice.to_json()) == notice


def test_subscription_files_are_checked():
    good = parse_subscriptions({"email": [{"id": "a", "to": "a@x.org", "watchlists": ["w"]}]})
    assert good.emails_for(NOTICE) == []
    for bad in (
        {"email": [{"id": "a", "to": "nobody", "watchlists": ["w"]}]},
        {"email": [{"id": "a", "to": "a@x.org"}]},
        {"webhook": [{"id": "h", "url": "ftp://x", "secret": "s", "watchlists": ["w"]}]},
        {
            "webhook": [
                {"id": "h", "url": "https://x", "secret": "s", "watchlists": ["w"], "colour": "red"}
            ]
        },
    ):
        with pytest.raises(SubscriptionError):
            parse_subscriptions(bad)
    hook = parse_subscriptions(
        {
            "webhook": [
                {"id": "h", "url": "https://x", "secret": "topsecret", "sources": ["catalogue:b"]}
            ]
        }
    ).webhook[0]
    assert "topsecret" not in repr(hook)
