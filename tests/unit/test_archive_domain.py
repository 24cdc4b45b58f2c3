"""Which file an alert goes to, and its Parquet row: plain dicts, values written by hand."""

import pytest

from brokerapp.domain.archive import (
    FileKey,
    block_start,
    file_key,
    hour_of,
    merge_by_offset,
    parquet_row,
    relpath,
)
from brokerapp.model.profiles import LSST_PROFILE, ZTF_PROFILE

FP = "3fa2c1d0aa55" + "0" * 52


def test_offsets_fall_in_blocks_of_n():
    assert [block_start(o, 100) for o in (0, 99, 100, 250, 1999)] == [0, 0, 100, 200, 1900]
    assert block_start(7, 1) == 7
    with pytest.raises(ValueError):
        block_start(-1, 100)


def test_nights_follow_each_surveys_convention():
    # MJD 60000.0 is 2023-02-25 00:00 UTC.
    assert ZTF_PROFILE.night(60000.0) == "20230225"
    assert ZTF_PROFILE.night(60000.99) == "20230225"
    # Rubin's dayObs is the date at UTC-12h: 02:24 UTC on the 25th is the night of the 24th.
    assert LSST_PROFILE.night(60000.1) == "20230224"
    assert LSST_PROFILE.night(60000.6) == "20230225"
    assert ZTF_PROFILE.night(None) is None


def test_hours_are_utc_hours_of_the_detection():
    assert [hour_of(m) for m in (60000.0, 60000.5, 60000.99999, None)] == [0, 12, 23, None]


def test_file_names_carry_survey_night_hour_partition_block_and_schema():
    key = file_key("avro", ZTF_PROFILE, 60000.5, 3, 1234, 1000, FP, hourly=True)
    assert key == FileKey("avro", "ztf", "20230225", 12, 3, 1000, "3fa2c1d0")
    assert relpath(key, hourly=True) == (
        "avro/survey=ztf/night=20230225/ztf-20230225-12h-p03-000000001000-3fa2c1d0.avro"
    )
    pq = file_key("parquet", LSST_PROFILE, 60000.1, 0, 999, 1000, FP, hourly=False)
    assert relpath(pq, hourly=False) == (
        "parquet/survey=lsst/night=20230224/lsst-20230224-p00-000000000000-3fa2c1d0.parquet"
    )


def test_an_alert_without_a_time_goes_to_night_unknown():
    key = file_key("avro", ZTF_PROFILE, None, 1, 5, 10, FP, hourly=True)
    assert relpath(key, hourly=True).startswith("avro/survey=ztf/night=unknown/ztf-unknown-xxh-")


def test_every_offset_of_a_block_names_the_same_file():
    names = {
        relpath(file_key("avro", ZTF_PROFILE, 60000.2, 0, o, 500, FP, hourly=True), True)
        for o in range(500, 1000)
    }
    assert len(names) == 1


def test_a_replayed_offset_replaces_its_entry_and_order_is_by_offset():
    held = {10: "a", 11: "b", 13: "d"}
    assert merge_by_offset(held, [(12, "c"), (11, "b2")]) == {10: "a", 11: "b2", 12: "c", 13: "d"}
    assert list(merge_by_offset({}, [(5, "x"), (2, "y")])) == [2, 5]


ZTF = {
    "objectId": "ZTF18abcdefg",
    "candid": 111,
    "candidate": {"candid": 111, "jd": 2460000.5, "ra": 10.5, "dec": -5.25, "magpsf": 18.1},
    "prv_candidates": [
        {"candid": 99, "jd": 2459999.5, "magpsf": 18.5},
        {"candid": None, "jd": 2459998.5, "magpsf": None},  # an upper limit
    ],
}
LSST = {
    "diaSource": {"diaSourceId": 222, "ra": 1.0, "dec": 2.0, "band": "r", "psfFlux": 1000.0},
    "diaObject": {"diaObjectId": 333},
    "prvDiaSources": None,
}


def test_a_ztf_row_is_the_candidate_flattened_with_previous_detections_nested():
    row = parquet_row(ZTF_PROFILE, ZTF, "alerts", 2, 40, 1700000000000)
    assert row == {
        "alert_id": 111,
        "object_id": "ZTF18abcdefg",
        "kafka_topic": "alerts",
        "kafka_partition": 2,
        "kafka_offset": 40,
        "kafka_timestamp_ms": 1700000000000,
        "candid": 111,
        "jd": 2460000.5,
        "ra": 10.5,
        "dec": -5.25,
        "magpsf": 18.1,
        "previous_detections": [{"candid": 99, "jd": 2459999.5, "magpsf": 18.5}],
    }


def test_an_lsst_row_has_its_object_id_as_a_string_and_an_empty_history():
    row = parquet_row(LSST_PROFILE, LSST, "alerts", 0, 1, 5)
    assert (row["alert_id"], row["object_id"], row["band"], row["psfFlux"]) == (
        222,
        "333",
        "r",
        1000.0,
    )
    assert row["previous_detections"] == []


def test_a_detection_field_named_like_a_broker_column_is_prefixed():
    record = {"diaSource": {"diaSourceId": 1, "kafka_offset": 7}, "diaObject": None}
    row = parquet_row(LSST_PROFILE, record, "alerts", 0, 3, 0)
    assert row["kafka_offset"] == 3 and row["detection_kafka_offset"] == 7
