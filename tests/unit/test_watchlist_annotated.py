"""Annotations and the AnnotatedAlert encoding, from hand-made records."""

from __future__ import annotations

import io
import struct

import fastavro

from brokerapp.domain.watchlists.annotated import (
    annotated_schema,
    annotation,
    encode_annotated,
    solar_system_annotations,
    solar_system_names,
    watchlist_topics,
)
from brokerapp.domain.zones import Entry, Match
from brokerapp.model.profiles import LSST_PROFILE, ZTF_PROFILE, AlertView

ALERT_SCHEMA = {
    "type": "record",
    "name": "alert",
    "namespace": "test",
    "fields": [{"name": "id", "type": "long"}, {"name": "note", "type": "string"}],
}


def view(**fields):
    defaults = dict(
        survey="ztf",
        alert_id=7,
        object_id="ZTF18abc",
        ra=10.0,
        dec=0.1,
        mjd=60000.5,
        band="g",
        magnitude=18.0,
        magnitude_error=0.1,
        flux=None,
        flux_error=None,
        ss_name=None,
        ss_distance_arcsec=None,
        is_solar_system=False,
        visit_id=1,
        n_previous=0,
        has_cutouts=False,
    )
    return AlertView(**{**defaults, **fields})


def test_a_zone_match_becomes_an_annotation():
    match = Match(Entry("w1@v1/M31", 10.0, 0.1, 2.0, {"watchlist": "w1", "entry": "M31"}), 1.25)
    assert annotation(view(), match) == {
        "alert_id": 7,
        "object_id": "ZTF18abc",
        "watchlist_id": "w1",
        "entry": "M31",
        "separation_arcsec": 1.25,
        "mjd": 60000.5,
    }
    lsst = annotation(view(object_id=12345, mjd=None), match)
    assert lsst["object_id"] == "12345" and lsst["mjd"] is None


def test_solar_system_names_come_from_the_survey_profile_normalised():
    # ZTF attributes a detection to a known object only with all three ss* fields set.
    attributed = {"ssnamenr": "002830", "ssdistnr": 0.4, "ssmagnr": 18.2}
    ztf = {"objectId": "ZTF1", "candid": 1, "candidate": attributed}
    assert solar_system_names(ZTF_PROFILE, ztf) == ["2830"]
    unnamed = {**attributed, "ssnamenr": "null"}
    assert solar_system_names(ZTF_PROFILE, {**ztf, "candidate": unnamed}) == []
    no_distance = {**attributed, "ssdistnr": -999.0}
    assert solar_system_names(ZTF_PROFILE, {**ztf, "candidate": no_distance}) == []
    lsst = {
        "diaSource": {"diaSourceId": 5, "ssObjectId": 21164719644750924},
        "MPCORB": {"mpcDesignation": "2012 JD69"},
    }
    assert solar_system_names(LSST_PROFILE, lsst) == ["21164719644750924", "2012JD69"]
    unnamed = {
        "diaSource": {"diaSourceId": 5, "ssObjectId": 0},
        "mpc_orbits": {"mpcDesignation": "K12J69D"},
    }
    assert solar_system_names(LSST_PROFILE, unnamed) == ["K12J69D"]  # once, not twice


def test_every_watchlist_following_a_name_gets_an_annotation():
    followers = {"2830": ["ss1", "ss2"], "K12J69D": ["ss3"]}.get
    got = solar_system_annotations(view(ss_distance_arcsec=3.5), ["2830", "9999"], followers)
    assert got == [
        {
            "alert_id": 7,
            "object_id": "2830",
            "watchlist_id": w,
            "entry": "2830",
            "separation_arcsec": 3.5,
            "mjd": 60000.5,
        }
        for w in ("ss1", "ss2")
    ]
    assert solar_system_annotations(view(), ["K12J69D"], followers)[0]["separation_arcsec"] == 0.0


def test_an_annotated_alert_is_framed_avro_holding_the_alert_and_its_annotations():
    schema = annotated_schema(ALERT_SCHEMA)
    assert [f["name"] for f in schema["fields"]] == ["alert", "annotations"]
    item = {
        "alert_id": 7,
        "object_id": None,
        "watchlist_id": "w1",
        "entry": "M31",
        "separation_arcsec": 1.25,
        "mjd": None,
    }
    value = encode_annotated(42, fastavro.parse_schema(schema), {"id": 7, "note": "x"}, [item])
    assert value[:5] == struct.pack(">bI", 0, 42)
    decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), fastavro.parse_schema(schema))
    assert decoded == {"alert": {"id": 7, "note": "x"}, "annotations": [item]}


def test_each_watchlist_matched_has_its_own_topic_once():
    annotations = [{"watchlist_id": "b"}, {"watchlist_id": "a"}, {"watchlist_id": "b"}]
    assert watchlist_topics("p-", annotations) == ["p-watchlist-a", "p-watchlist-b"]
