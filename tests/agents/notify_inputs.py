"""Inputs of the notifier tests: AnnotatedAlerts and crossmatch records from real samples.

An AnnotatedAlert is framed as the watchlist worker frames it (its schema wraps the sample's
writer schema; the stand-in registry gives it an ID); a crossmatch record is written by hand
in the shape ``emit_annotations(position=true)`` sends. Expected values are read from the raw
sample records.
"""

from __future__ import annotations

import io
import json
import struct

import fastavro

from brokerapp.domain.watchlists.annotated import annotated_schema

from .harness import is_solar, object_key, samples

MJD_OFFSET = 2400000.5


def nonsolar_ztf(n: int = 2):
    return [s for s in samples("ztf") if not is_solar(s)][:n]


def annotated_bytes(registry, sample, watchlist_id="wl1", entry="SN-candidate", sep=1.25):
    schema = annotated_schema(json.loads(sample.schema))
    schema_id = registry.register(json.dumps(schema))
    body = io.BytesIO()
    annotation = {
        "alert_id": sample.record["candidate"]["candid"],
        "object_id": sample.record["objectId"],
        "watchlist_id": watchlist_id,
        "entry": entry,
        "separation_arcsec": sep,
        "mjd": sample.record["candidate"]["jd"] - MJD_OFFSET,
    }
    fastavro.schemaless_writer(
        body, fastavro.parse_schema(schema), {"alert": sample.record, "annotations": [annotation]}
    )
    return struct.pack(">bI", 0, schema_id) + body.getvalue()


def crossmatch_record(sample, catalogue="bright", source_id=7, sep=0.5):
    c = sample.record["candidate"]
    return {
        "survey": "ztf",
        "alert_id": c["candid"],
        "object_id": sample.record["objectId"],
        "ra": c["ra"],
        "dec": c["dec"],
        "mjd": c["jd"] - MJD_OFFSET,
        "annotations": {
            "catalogue_match": {
                "catalogue": catalogue,
                "matches": [{"id": source_id, "separation_arcsec": sep, "mag": 17.5}],
            }
        },
    }


def watchlist_annotation(sample):
    c = sample.record["candidate"]
    return {
        "alert_id": c["candid"],
        "object_id": sample.record["objectId"],
        "watchlist_id": "wl1",
        "entry": "x",
        "separation_arcsec": 1.0,
        "mjd": c["jd"] - MJD_OFFSET,
    }


async def feed_inputs(feed, settings, registry, annotated, crossmatched, garbage=True):
    """Put AnnotatedAlerts, crossmatch records, a watchlist Annotation and garbage."""
    for sample in annotated:
        await feed.put(
            annotated_bytes(registry, sample),
            key=object_key(sample),
            topic=settings.annotated_alerts_topic,
        )
    for sample in crossmatched:
        await feed.put(
            json.dumps(crossmatch_record(sample)).encode(),
            key=object_key(sample),
            topic=settings.annotations_topic,
        )
        await feed.put(
            json.dumps(watchlist_annotation(sample)).encode(),
            key=object_key(sample),
            topic=settings.annotations_topic,
        )
    if garbage:
        await feed.put(b"\x00\x00\x00\x00\x07garbage", topic=settings.annotated_alerts_topic)
        await feed.put(b'{"not": "an annotation"}', topic=settings.annotations_topic)


SUBSCRIPTIONS = """
[[email]]
id = "alice-wl1"
to = "alice@example.org"
watchlists = ["wl1"]

[[email]]
id = "bob-bright"
to = "bob@example.org"
sources = ["catalogue:bright"]
digest_only = true

[[webhook]]
id = "hook-wl1"
url = "{url}"
secret = "s3cret-wl1"
watchlists = ["wl1"]

[[webhook]]
id = "slack-bright"
url = "{url}"
secret = "s3cret-slack"
sources = ["catalogue:bright"]
slack = true
"""


def write_subscriptions(tmp_path, url="https://127.0.0.1:1/hook"):
    path = tmp_path / "subscriptions.toml"
    path.write_text(SUBSCRIPTIONS.format(url=url))
    return path
