"""brokerapp.domain.processors: outcomes, chains, solar-system routing, chain files, plugins.

Pure: no servers. Alerts are the real samples in tests/data and hand-made records. Expected
solar-system answers are derived from the raw fields right here, not from the code under test
(the rule itself is tested with the survey profiles, tests/unit/test_profiles.py).
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import fastavro
import pytest

from brokerapp.domain.processors import (
    BUILTIN_PROCESSORS,
    DEFAULT_VIEW_FIELDS,
    ENTRY_POINT_GROUP,
    AlertProcessor,
    AnnotateView,
    Chain,
    ChainConfigError,
    ChainFile,
    ChainResult,
    Drop,
    Emit,
    MagnitudeCut,
    Pass,
    ProcessorError,
    SolarSystem,
    chain_from_config,
    load_chain,
    option_names,
    processor_classes,
)
from brokerapp.model.alert import Alert

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
PLUGINS = DATA / "plugins"
PLUGIN_MODULE = "brokerapp_example_plugin"
ZTF_FILES = sorted((DATA / "ztf").glob("*.avro"))
LSST_FILES = sorted((DATA / "lsst").glob("*.avro"))
DEPLOYED_CHAINS = sorted((ROOT / "deploy" / "chains").glob("*.toml"))


def read(path: Path) -> dict:
    with path.open("rb") as fh:
        (record,) = list(fastavro.reader(fh))
    return record


def file_id(path: Path) -> str:
    return path.stem[:24]


ZTF_RECORDS = {path.name: read(path) for path in ZTF_FILES}
LSST_RECORDS = {path.name: read(path) for path in LSST_FILES}


def ztf_alert(bright: bool = True) -> Alert:
    """A real ZTF alert, brighter or fainter than 19 mag."""
    for record in ZTF_RECORDS.values():
        if (record["candidate"]["magpsf"] < 19.0) == bright:
            return Alert.of(record)
    raise AssertionError("no such sample")


def write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    path.write_text(textwrap.dedent(text))
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


# ------------------------------------------------------------------ processors for tests


class Record(AlertProcessor):
    """Returns what it is given and notes that it ran."""

    name = "record"

    def __init__(self, *, returns=None, label: str = "", log: list | None = None, **options):
        super().__init__(**options)
        self.returns = Pass() if returns is None else returns
        self.label = label or self.name
        self.log = log if log is not None else []

    def process(self, alert):
        self.log.append(self.label)
        return self.returns


def recording(name: str, returns, log: list) -> AlertProcessor:
    cls = type(name.title(), (Record,), {"name": name})
    return cls(returns=returns, label=name, log=log)


class ReturnsNone(AlertProcessor):
    name = "returns_none"

    def process(self, alert):
        return None


class Raises(AlertProcessor):
    name = "raises"

    def process(self, alert):
        return {"a": 1}["b"]


class NoOptionsDeclared(AlertProcessor):
    """Uses the base __init__: takes no options."""

    def process(self, alert):
        return Pass()


class StrictSignature(AlertProcessor):
    """Declares its options without **options: Python itself rejects others."""

    name = "strict"

    def __init__(self, *, level: int):
        super().__init__()
        self.level = level

    def process(self, alert):
        return Pass({"level": self.level})


class FailsInInit(AlertProcessor):
    name = "fails_in_init"

    def __init__(self, **options):
        super().__init__(**options)
        raise ValueError("cannot open the catalogue")


TEST_REGISTRY = {
    cls.name: cls
    for cls in (*BUILTIN_PROCESSORS, Record, StrictSignature, FailsInInit, NoOptionsDeclared)
}


# ------------------------------------------------------------------------------ outcomes


def test_outcomes_are_small_frozen_values():
    assert Drop() == Drop("") and Drop("faint").reason == "faint"
    assert Pass() == Pass(None, False)
    assert Emit("s") == Emit("s", None, False)
    assert Emit("s", [{"a": 1}]).records == ({"a": 1},)
    with pytest.raises(AttributeError):
        Drop("x").reason = "y"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Drop(1),
        lambda: Pass([("a", 1)]),
        lambda: Pass("a"),
        lambda: Emit("s", {"a": 1}),
        lambda: Emit("s", "abc"),
        lambda: Emit("s", [1, 2]),
        lambda: Emit("s", 3),
    ],
)
def test_bad_outcomes_are_type_errors(make):
    with pytest.raises(TypeError):
        make()


@pytest.mark.parametrize("stream", ["", None, 3])
def test_emit_needs_a_stream_name(stream):
    with pytest.raises(ValueError, match="stream"):
        Emit(stream)


# --------------------------------------------------------------------------- processors


def test_processor_names_default_to_the_class_name():
    assert NoOptionsDeclared.name == "NoOptionsDeclared"
    assert Record.name == "record"
    assert [cls.name for cls in BUILTIN_PROCESSORS] == [
        "solar_system",
        "magnitude_cut",
        "annotate_view",
        "emit_annotations",
        "catalogue_match",
    ]
    assert repr(Record()) == "<Record 'record'>"


def test_unknown_options_are_config_errors_when_constructed_directly():
    with pytest.raises(ChainConfigError, match=r"magnitude_cut: unknown option\(s\) 'maxmag'"):
        MagnitudeCut(max_mag=20.0, maxmag=19)
    with pytest.raises(ChainConfigError, match="it takes: no options"):
        NoOptionsDeclared(x=1)
    assert option_names(MagnitudeCut) == ["bands", "keep_missing", "max_mag"]
    assert option_names(NoOptionsDeclared) == []


def test_base_process_is_abstract():
    with pytest.raises(NotImplementedError):
        AlertProcessor().process(ztf_alert())


# ------------------------------------------------------------------------------- chains


def test_empty_chain_passes_everything():
    alert = ztf_alert()
    result = Chain([], "empty").run(alert)
    assert result == ChainResult(passed=True, annotations={}, emits=[], timings={})
    assert result.annotations is alert.annotations


def test_chain_needs_processors():
    with pytest.raises(TypeError, match="not an AlertProcessor"):
        Chain([Pass()])


def test_all_pass_runs_every_processor_in_order():
    log: list[str] = []
    chain = Chain([recording(n, Pass(), log) for n in ("a", "b", "c")], "abc")
    result = chain.run(ztf_alert())
    assert log == ["a", "b", "c"]
    assert result.passed and result.dropped_by is None and result.stopped_by is None
    assert result.reason == "" and result.emits == []
    assert set(result.timings) == {"a", "b", "c"}
    assert all(t >= 0.0 for t in result.timings.values())
    assert len(chain) == 3 and repr(chain) == "Chain('abc', ['a', 'b', 'c'])"


def test_drop_stops_the_chain():
    log: list[str] = []
    chain = Chain(
        [
            recording("a", Pass({"x": 1}), log),
            recording("cut", Drop("too faint"), log),
            recording("c", Pass(), log),
        ]
    )
    result = chain.run(ztf_alert())
    assert log == ["a", "cut"]
    assert not result.passed
    assert (result.dropped_by, result.reason, result.stopped_by) == ("cut", "too faint", None)
    assert result.annotations == {"a": {"x": 1}}
    assert set(result.timings) == {"a", "cut"}


def test_drop_discards_earlier_emits():
    log: list[str] = []
    chain = Chain(
        [
            recording("router", Emit("solar"), log),
            recording("cut", [Emit("rejects"), Drop("faint")], log),
        ]
    )
    result = chain.run(ztf_alert())
    assert not result.passed and result.dropped_by == "cut"
    assert result.emits == []


@pytest.mark.parametrize("stopper", [Pass({"why": "done"}, stop=True), Emit("out", stop=True)])
def test_stop_ends_the_chain_but_the_alert_passes(stopper):
    log: list[str] = []
    chain = Chain(
        [recording("a", Pass(), log), recording("s", stopper, log), recording("no", Drop(), log)]
    )
    result = chain.run(ztf_alert())
    assert log == ["a", "s"]
    assert result.passed and result.stopped_by == "s" and result.dropped_by is None
    if isinstance(stopper, Emit):
        assert result.emits == [("out", None)]
    else:
        assert result.annotations == {"s": {"why": "done"}}


def test_annotations_accumulate_under_processor_names():
    log: list[str] = []
    alert = ztf_alert()
    alert.annotations["gateway"] = {"seen": True}
    chain = Chain(
        [
            recording("first", Pass({"a": 1, "b": 2}), log),
            recording("second", Pass({"a": "other"}), log),
            recording("first", Pass({"b": 3, "c": 4}), log),
            recording("quiet", Pass(), log),
            recording("empty", Pass({}), log),
        ]
    )
    result = chain.run(alert)
    assert result.annotations is alert.annotations
    assert alert.annotations == {
        "gateway": {"seen": True},
        "first": {"a": 1, "b": 3, "c": 4},
        "second": {"a": "other"},
    }
    assert set(result.timings) == {"first", "second", "quiet", "empty"}


def test_multiple_emits_and_lists_of_outcomes_in_order():
    log: list[str] = []
    new = [{"id": 1}, {"id": 2}]
    chain = Chain(
        [
            recording("router", [Emit("a"), Emit("b", new), Pass({"routed": 2})], log),
            recording("empty_list", [], log),
            recording("tuple", (Emit("c"),), log),
            recording("again", Emit("a"), log),
        ]
    )
    result = chain.run(ztf_alert())
    assert log == ["router", "empty_list", "tuple", "again"]
    assert result.passed
    assert result.emits == [("a", None), ("b", new), ("c", None), ("a", None)]
    assert isinstance(result.emits[1][1], list)
    assert result.annotations == {"router": {"routed": 2}}


def test_a_drop_in_a_list_ends_the_list():
    log: list[str] = []
    chain = Chain([recording("p", [Pass({"a": 1}), Drop("no"), Pass({"b": 2})], log)])
    result = chain.run(ztf_alert())
    assert not result.passed and result.reason == "no"
    assert result.annotations == {"p": {"a": 1}}


def test_a_stop_in_a_list_applies_the_whole_list():
    log: list[str] = []
    chain = Chain(
        [recording("p", [Emit("x", stop=True), Emit("y")], log), recording("q", Pass(), log)]
    )
    result = chain.run(ztf_alert())
    assert log == ["p"]
    assert result.emits == [("x", None), ("y", None)] and result.stopped_by == "p"


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (None, "returned None"),
        ("pass", "returned str"),
        (True, "returned bool"),
        ([Pass(), None], "list holding NoneType"),
        ({"stream": "x"}, "returned dict"),
    ],
)
def test_returning_something_else_is_a_processor_error(returned, message):
    alert = ztf_alert()
    chain = Chain([Record(returns=Pass()), recording("bad", returned, [])])
    chain.processors[1].returns = returned
    with pytest.raises(ProcessorError, match=message) as info:
        chain.run(alert)
    assert info.value.processor == "bad"
    assert info.value.alert_id == alert.view.alert_id
    assert isinstance(info.value.original, TypeError)


def test_returns_none_processor():
    alert = ztf_alert()
    with pytest.raises(ProcessorError) as info:
        Chain([ReturnsNone()]).run(alert)
    assert str(info.value) == (
        f"processor 'returns_none' failed on alert {alert.view.alert_id}: TypeError: "
        "process() returned None; return Pass() to let the alert through: "
        "expected Drop, Pass, Emit or a list of them"
    )


def test_exceptions_are_wrapped_with_the_processor_name_and_alert_id():
    log: list[str] = []
    alert = ztf_alert()
    chain = Chain([recording("a", Pass(), log), Raises(), recording("after", Pass(), log)])
    with pytest.raises(ProcessorError) as info:
        chain.run(alert)
    error = info.value
    assert log == ["a"]
    assert (error.processor, error.alert_id) == ("raises", alert.view.alert_id)
    assert isinstance(error.original, KeyError)
    assert error.__cause__ is error.original
    assert str(error) == f"processor 'raises' failed on alert {alert.view.alert_id}: KeyError: 'b'"
    assert error.args == ("raises", alert.view.alert_id, error.original)


def test_base_exceptions_are_not_wrapped():
    class Interrupted(AlertProcessor):
        def process(self, alert):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Chain([Interrupted()]).run(ztf_alert())


def test_outcome_errors_raised_inside_process_are_wrapped():
    class BadEmit(AlertProcessor):
        def process(self, alert):
            return Emit("s", {"not": "a list"})

    with pytest.raises(ProcessorError, match="BadEmit.*TypeError: Emit records"):
        Chain([BadEmit()]).run(ztf_alert())


# ------------------------------------------------------------------- solar-system rule
# The rule itself is the survey profiles' (tests/unit/test_profiles.py); here, that the
# solar_system processor routes by it.


def ztf_expected_solar(candidate: dict) -> bool:
    """Explicit rule: ssdistnr, ssmagnr and ssnamenr all set."""
    return (
        candidate["ssdistnr"] is not None
        and candidate["ssdistnr"] != -999.0
        and candidate["ssmagnr"] is not None
        and candidate["ssmagnr"] != -999.0
        and candidate["ssnamenr"] is not None
        and candidate["ssnamenr"] != "null"
    )


def expected_solar(record: dict) -> bool:
    """Explicit rule for the samples: ZTF as above; LSST a non-zero ssObjectId or an ssSource."""
    if "candidate" in record:
        return ztf_expected_solar(record["candidate"])
    ss_object_id = record["diaSource"]["ssObjectId"]
    return (ss_object_id is not None and ss_object_id != 0) or record["ssSource"] is not None


# ------------------------------------------------------------------ built-in processors


def test_solar_system_routes_every_sample_to_exactly_one_stream():
    processor = SolarSystem()
    routed: dict[str, int] = {"solar": 0, "nonsolar": 0}
    for record in [*ZTF_RECORDS.values(), *LSST_RECORDS.values()]:
        result = Chain([processor]).run(Alert.of(record))
        assert result.passed
        ((stream, records),) = result.emits
        assert records is None
        assert stream == ("solar" if expected_solar(record) else "nonsolar")
        routed[stream] += 1
    assert routed == {"solar": 11 + 2, "nonsolar": 7 + 48}


def test_solar_system_stream_names():
    processor = SolarSystem(solar_stream="ss", nonsolar_stream="rest")
    solar = next(r for r in ZTF_RECORDS.values() if ztf_expected_solar(r["candidate"]))
    other = next(r for r in ZTF_RECORDS.values() if not ztf_expected_solar(r["candidate"]))
    assert processor.process(Alert.of(solar)) == Emit("ss")
    assert processor.process(Alert.of(other)) == Emit("rest")
    with pytest.raises(ChainConfigError, match="both 'x'"):
        SolarSystem(solar_stream="x", nonsolar_stream="x")
    with pytest.raises(ChainConfigError, match="'solar_stream' must be a non-empty string"):
        SolarSystem(solar_stream=3)
    with pytest.raises(ChainConfigError, match="'nonsolar_stream' must be a non-empty string"):
        SolarSystem(nonsolar_stream="")


@pytest.mark.parametrize(
    ("changes", "stream"),
    [
        ({}, "solar"),
        ({"ssmagnr": -999.0}, "nonsolar"),
        ({"ssdistnr": None}, "nonsolar"),
        ({"ssnamenr": "null"}, "nonsolar"),
    ],
)
def test_solar_system_routes_by_the_profiles_rule(changes, stream):
    solar = next(r for r in ZTF_RECORDS.values() if ztf_expected_solar(r["candidate"]))
    record = {**solar, "candidate": {**solar["candidate"], **changes}}
    assert SolarSystem().process(Alert.of(record)) == Emit(stream)


def test_solar_system_routes_lsst_by_an_object_id_or_a_designation():
    lsst = next(r for r in LSST_RECORDS.values() if r["ssSource"] is None)
    assert SolarSystem().process(Alert.of(lsst)) == Emit("nonsolar")
    by_id = {**lsst, "diaSource": {**lsst["diaSource"], "ssObjectId": 42}}
    assert SolarSystem().process(Alert.of(by_id)) == Emit("solar")
    by_designation = {**lsst, "MPCORB": {"ssObjectId": 0, "mpcDesignation": "2011 AB1"}}
    assert SolarSystem().process(Alert.of(by_designation)) == Emit("solar")


def test_magnitude_cut_on_ztf():
    bright, faint = ztf_alert(bright=True), ztf_alert(bright=False)
    cut = MagnitudeCut(max_mag=19.0)
    assert cut.process(bright) == Pass()
    outcome = cut.process(faint)
    assert isinstance(outcome, Drop)
    assert outcome.reason == f"magnitude {faint.view.magnitude:.3f} fainter than 19"
    at_limit = MagnitudeCut(max_mag=faint.view.magnitude)
    assert at_limit.process(faint) == Pass()
    assert MagnitudeCut(max_mag=30, bands=["g", "r"]).process(bright) == Pass()
    only_i = MagnitudeCut(max_mag=30, bands=["i"]).process(bright)
    assert only_i == Drop(f"band {bright.view.band!r} not in ['i']")


def test_magnitude_cut_on_every_sample():
    cut = Chain([MagnitudeCut(max_mag=19.5)])
    for record in [*ZTF_RECORDS.values(), *LSST_RECORDS.values()]:
        alert = Alert.of(record)
        magnitude = alert.view.magnitude
        assert cut.run(alert).passed is (magnitude is not None and magnitude <= 19.5)


def test_magnitude_cut_without_magnitude():
    record = next(r for r in LSST_RECORDS.values() if r["diaSource"]["psfFlux"] < 0)
    alert = Alert.of(record)
    assert alert.view.magnitude is None
    assert MagnitudeCut(max_mag=30).process(alert) == Drop("no magnitude")
    assert MagnitudeCut(max_mag=30, keep_missing=True).process(alert) == Pass()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_mag": "20"}, "'max_mag' must be a number"),
        ({"max_mag": True}, "'max_mag' must be a number"),
        ({"max_mag": float("nan")}, "'max_mag' must be a number"),
        ({"max_mag": 20, "bands": "g"}, "'bands' must be a non-empty list of strings"),
        ({"max_mag": 20, "bands": []}, "'bands' must be a non-empty list of strings"),
        ({"max_mag": 20, "bands": ["g", 1]}, "'bands' must be a non-empty list of strings"),
        ({"max_mag": 20, "keep_missing": 1}, "'keep_missing' must be true or false"),
    ],
)
def test_magnitude_cut_bad_options(options, message):
    with pytest.raises(ChainConfigError, match=message):
        MagnitudeCut(**options)


def test_annotate_view():
    alert = ztf_alert()
    result = Chain([AnnotateView()]).run(alert)
    view = alert.view
    assert result.annotations == {
        "annotate_view": {
            "survey": "ztf",
            "band": view.band,
            "magnitude": view.magnitude,
            "n_previous": view.n_previous,
        }
    }
    assert tuple(result.annotations["annotate_view"]) == DEFAULT_VIEW_FIELDS
    lsst = Alert.of(next(iter(LSST_RECORDS.values())))
    outcome = AnnotateView(fields=["alert_id", "is_solar_system"]).process(lsst)
    assert outcome == Pass({"alert_id": lsst.view.alert_id, "is_solar_system": False})
    with pytest.raises(ChainConfigError, match=r"\['colour'\] are not AlertView fields"):
        AnnotateView(fields=["band", "colour"])


# --------------------------------------------------------------------------- chain files

SSFILTER = """\
    name = "ssfilter"

    [[processor]]
    use = "magnitude_cut"
    max_mag = 19.5

    [[processor]]
    use = "annotate_view"
    fields = ["survey", "magnitude"]

    [[processor]]
    use = "solar_system"
    solar_stream = "solar"
    nonsolar_stream = "other"
"""


def test_load_chain(tmp_path):
    chain = load_chain(write(tmp_path / "file.toml", SSFILTER))
    assert chain.name == "ssfilter"
    cut, annotate, router = chain.processors
    assert isinstance(cut, MagnitudeCut) and cut.max_mag == 19.5 and cut.bands is None
    assert isinstance(annotate, AnnotateView) and annotate.fields == ("survey", "magnitude")
    assert isinstance(router, SolarSystem) and router.nonsolar_stream == "other"
    emitted = {"solar": 0, "other": 0}
    for record in ZTF_RECORDS.values():
        alert = Alert.of(record)
        result = chain.run(alert)
        bright = record["candidate"]["magpsf"] <= 19.5
        assert result.passed is bright
        if bright:
            ((stream, _),) = result.emits
            emitted[stream] += 1
            assert stream == ("solar" if ztf_expected_solar(record["candidate"]) else "other")
            assert result.annotations["annotate_view"]["survey"] == "ztf"
        else:
            assert result.dropped_by == "magnitude_cut" and result.emits == []
    assert sum(emitted.values()) == sum(
        r["candidate"]["magpsf"] <= 19.5 for r in ZTF_RECORDS.values()
    )


def test_chain_name_defaults_to_the_file_name(tmp_path):
    path = write(tmp_path / "night-shift.toml", '[[processor]]\nuse = "solar_system"\n')
    assert load_chain(path).name == "night-shift"
    assert chain_from_config({"processor": [{"use": "solar_system"}]}).name == "chain"


def test_chain_from_config():
    chain = chain_from_config(
        {
            "name": "c",
            "processor": [{"use": "record", "label": "x"}, {"use": "strict", "level": 2}],
        },
        registry=TEST_REGISTRY,
    )
    assert [type(p) for p in chain.processors] == [Record, StrictSignature]
    assert chain.processors[0].label == "x" and chain.processors[1].level == 2
    assert chain.run(ztf_alert()).annotations == {"strict": {"level": 2}}


@pytest.mark.parametrize("path", DEPLOYED_CHAINS, ids=lambda p: p.name)
def test_deployed_chain_files_load(path, tmp_path, monkeypatch):
    from brokerapp.domain.watchlists import synthetic_catalogue, write_catalogue

    # Chains name files relative to the working directory, as workers run from the checkout;
    # the crossmatch chain's catalogue is made by `brokerapp catalogue synthetic`.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var" / "catalogues").mkdir(parents=True)
    write_catalogue(synthetic_catalogue(2000, seed=1), "var/catalogues/synthetic.parquet")
    chain = load_chain(path)
    assert len(chain) >= 1
    for record in [*ZTF_RECORDS.values(), *LSST_RECORDS.values()]:
        assert isinstance(chain.run(Alert.of(record)), ChainResult)


CONFIG_ERRORS = [
    ('name = "x"\n[[processor]\nuse = 1', r"invalid TOML: .*line 2"),
    ('name = "x"\n', r"no \[\[processor\]\] entries"),
    ("processor = []", r"no \[\[processor\]\] entries"),
    ('name = "x"\n[[processors]]\nuse = "solar_system"', r"unknown key\(s\) 'processors'"),
    ('name = 3\n[[processor]]\nuse = "solar_system"', "'name' must be a non-empty string"),
    ('processor = "solar_system"', "'processor' must be an array of tables"),
    ("processor = [1]", "processor #1: must be a table"),
    ("[[processor]]\nmax_mag = 1", 'processor #1: needs `use = "<processor name>"`, got None'),
    ("[[processor]]\nuse = 2", 'processor #1: needs `use = "<processor name>"`, got 2'),
    (
        '[[processor]]\nuse = "solar_system"\n[[processor]]\nuse = "magnitude_kut"',
        r"processor #2 \('magnitude_kut'\): unknown processor \(known: .*annotate_view.*"
        r"magnitude_cut.*; plugins add more through the entry-point group "
        r"'brokerapp.processors'\)",
    ),
    (
        '[[processor]]\nuse = "magnitude_cut"\nmax_mag = 20\nmaxmag = 19',
        r"processor #1 \('magnitude_cut'\): magnitude_cut: unknown option\(s\) 'maxmag' "
        r"\(it takes: bands, keep_missing, max_mag\)",
    ),
    (
        '[[processor]]\nuse = "strict"\nlevel = 1\nlevle = 2',
        r"processor #1 \('strict'\): unknown option\(s\) 'levle' \(it takes: level\)",
    ),
    (
        '[[processor]]\nuse = "NoOptionsDeclared"\nx = 1',
        r"processor #1 \('NoOptionsDeclared'\): NoOptionsDeclared: unknown option\(s\) 'x' "
        r"\(it takes: no options\)",
    ),
    (
        '[[processor]]\nuse = "magnitude_cut"',
        r"processor #1 \('magnitude_cut'\): missing option\(s\) 'max_mag'",
    ),
    (
        '[[processor]]\nuse = "magnitude_cut"\nmax_mag = "bright"',
        r"processor #1 \('magnitude_cut'\): magnitude_cut: option 'max_mag' must be a number",
    ),
    (
        '[[processor]]\nuse = "solar_system"\n[[processor]]\nuse = "fails_in_init"',
        r"processor #2 \('fails_in_init'\): cannot be created: ValueError: cannot open",
    ),
]


@pytest.mark.parametrize(("text", "message"), CONFIG_ERRORS)
def test_chain_file_errors_name_the_file_and_the_entry(tmp_path, text, message):
    path = write(tmp_path / "broken.toml", text)
    with pytest.raises(ChainConfigError, match=message) as info:
        load_chain(path, registry=TEST_REGISTRY)
    assert str(info.value).startswith(f"{path}: ")


def test_chain_file_read_errors(tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(ChainConfigError, match=f"{missing}: cannot read chain file"):
        load_chain(missing)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ChainConfigError, match=f"{binary}: not UTF-8 text"):
        load_chain(binary)


def test_chain_from_config_errors_name_the_source():
    with pytest.raises(ChainConfigError, match=r"^<config>: a chain is a table, not list"):
        chain_from_config([])
    with pytest.raises(ChainConfigError, match=r"^here: processor #1 \('nope'\)"):
        chain_from_config({"processor": [{"use": "nope"}]}, source="here")


# ---------------------------------------------------------------------------- ChainFile

ONE = '[[processor]]\nuse = "solar_system"\n'
TWO = 'name = "two"\n[[processor]]\nuse = "magnitude_cut"\nmax_mag = 20\n' + ONE
BROKEN = '[[processor]]\nuse = "magnitude_cut"\nmax_mag = "twenty"\n'
T0 = 1_700_000_000_000_000_000


def test_chain_file_loads_at_construction(tmp_path):
    chains = ChainFile(write(tmp_path / "node.toml", ONE, T0), poll_seconds=2.0)
    assert (chains.version, chains.reloads, chains.reload_failures) == (1, 0, 0)
    assert chains.last_error is None and chains.chain.name == "node"
    assert chains.loaded_at == pytest.approx(time.time(), abs=60)
    assert chains.current(100.0) is chains.chain
    assert repr(chains) == f"ChainFile({str(tmp_path / 'node.toml')!r}, version=1)"


def test_chain_file_must_load_at_construction(tmp_path):
    with pytest.raises(ChainConfigError, match="cannot read chain file"):
        ChainFile(tmp_path / "absent.toml")
    with pytest.raises(ChainConfigError, match="'max_mag' must be a number"):
        ChainFile(write(tmp_path / "broken.toml", BROKEN))


def test_chain_file_no_reload_when_unchanged(tmp_path):
    path = write(tmp_path / "node.toml", ONE, T0)
    chains = ChainFile(path, poll_seconds=1.0)
    first = chains.chain
    for now in range(0, 50, 3):
        assert chains.current(float(now)) is first
    os.utime(path, ns=(T0, T0))  # same times, same size: nothing changed
    assert not chains.check(100.0)
    assert (chains.version, chains.reloads, chains.reload_failures) == (1, 0, 0)


def test_chain_file_reloads_on_change_at_most_every_poll_seconds(tmp_path):
    path = write(tmp_path / "node.toml", ONE, T0)
    chains = ChainFile(path, poll_seconds=1.0)
    first = chains.current(10.0)
    write(path, TWO, T0 + 5_000_000_000)
    assert chains.current(10.5) is first  # not looked at yet
    second = chains.current(11.0)
    assert second is not first and second.name == "two"
    assert [p.name for p in second.processors] == ["magnitude_cut", "solar_system"]
    assert (chains.version, chains.reloads, chains.last_error) == (2, 1, None)
    assert chains.current(12.0) is second
    # Same size, new modification time: reloaded.
    write(path, TWO.replace("max_mag = 20", "max_mag = 19"), T0 + 9_000_000_000)
    third = chains.current(13.0)
    assert third is not second and third.processors[0].max_mag == 19.0
    assert chains.version == 3


def test_chain_file_broken_edit_keeps_the_old_chain(tmp_path, caplog):
    path = write(tmp_path / "node.toml", ONE, T0)
    chains = ChainFile(path, poll_seconds=1.0)
    good = chains.chain
    write(path, BROKEN, T0 + 1_000_000_000)
    with caplog.at_level(logging.WARNING, logger="brokerapp.domain.processors"):
        assert chains.current(5.0) is good
    assert chains.reload_failures == 1 and chains.version == 1
    assert chains.last_error.startswith(f"{path}: processor #1 ('magnitude_cut')")
    assert "'max_mag' must be a number" in chains.last_error
    assert "reload failed, keeping chain 'node' version 1" in caplog.text
    # The same broken state is not retried (nor counted) at every poll.
    assert chains.current(7.0) is good and chains.current(9.0) is good
    assert chains.reload_failures == 1
    # Another broken edit counts again.
    write(path, "[[processor]\n", T0 + 2_000_000_000)
    assert chains.current(11.0) is good
    assert chains.reload_failures == 2 and "invalid TOML" in chains.last_error
    # The fix loads.
    write(path, TWO, T0 + 3_000_000_000)
    fixed = chains.current(13.0)
    assert fixed is not good and fixed.name == "two"
    assert (chains.version, chains.reloads, chains.reload_failures) == (2, 1, 2)
    assert chains.last_error is None


def test_chain_file_deleted_then_replaced(tmp_path):
    path = write(tmp_path / "node.toml", ONE, T0)
    chains = ChainFile(path, poll_seconds=1.0)
    good = chains.chain
    path.unlink()
    assert chains.current(2.0) is good
    assert "cannot read chain file" in chains.last_error and chains.reload_failures == 1
    assert chains.current(4.0) is good and chains.reload_failures == 1
    # Atomic replace: write a temporary file, rename it over the chain file.
    temporary = write(tmp_path / "node.toml.tmp", TWO, T0 + 1_000_000_000)
    temporary.replace(path)
    assert chains.current(6.0).name == "two" and chains.last_error is None


def test_chain_file_checks_when_the_clock_goes_back_or_on_request(tmp_path):
    path = write(tmp_path / "node.toml", ONE, T0)
    chains = ChainFile(path, poll_seconds=60.0)
    chains.current(1000.0)
    write(path, TWO, T0 + 1_000_000_000)
    assert chains.current(1001.0).name == "node"
    assert chains.current(500.0).name == "two"
    write(path, ONE, T0 + 2_000_000_000)
    assert chains.check(501.0) is True and chains.chain.name == "node"
    assert chains.check() is False
    write(path, TWO, T0 + 3_000_000_000)
    assert chains.current().name == "node"  # default clock time.monotonic(): too soon
    chains.poll_seconds = 0.0
    assert chains.current().name == "two"


# -------------------------------------------------------------------------------- plugins


@pytest.fixture
def plugin_path(monkeypatch):
    """Install the stand-in external package by putting its folder on sys.path."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    yield PLUGINS
    sys.modules.pop(PLUGIN_MODULE, None)


def dist_info(folder: Path, name: str, entry_points: str) -> Path:
    """Write a minimal installed-distribution record into ``folder``."""
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}\n")
    return folder


def test_plugin_is_not_installed_by_default():
    assert "tag_bright" not in processor_classes()
    assert PLUGIN_MODULE not in sys.modules
    assert str(PLUGINS) not in sys.path


def test_plugin_processor_is_registered(plugin_path):
    classes = processor_classes()
    assert {"solar_system", "magnitude_cut", "annotate_view", "tag_bright"} <= set(classes)
    tag_bright = classes["tag_bright"]
    assert tag_bright.__module__ == PLUGIN_MODULE and tag_bright.name == "tag_bright"
    assert issubclass(tag_bright, AlertProcessor)


def test_plugin_processor_runs_in_a_chain_file(plugin_path, tmp_path):
    path = write(
        tmp_path / "plugged.toml",
        """\
        [[processor]]
        use = "tag_bright"
        brighter_than = 19.0

        [[processor]]
        use = "solar_system"
        """,
    )
    chain = load_chain(path)
    assert [p.name for p in chain.processors] == ["tag_bright", "solar_system"]
    tagged = 0
    for record in ZTF_RECORDS.values():
        result = chain.run(Alert.of(record))
        magnitude = record["candidate"]["magpsf"]
        if magnitude < 19.0:
            assert result.annotations == {"tag_bright": {"bright": True, "magnitude": magnitude}}
            tagged += 1
        else:
            assert result.annotations == {}
        assert len(result.emits) == 1
    assert 0 < tagged < len(ZTF_RECORDS)
    bad = write(tmp_path / "bad.toml", '[[processor]]\nuse = "tag_bright"\nbrighter = 1\n')
    with pytest.raises(ChainConfigError, match=r"#1 \('tag_bright'\).*unknown option.*brighter"):
        load_chain(bad)


def test_plugin_installed_through_pythonpath_in_a_fresh_interpreter():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(ROOT)])}
    script = (
        "from brokerapp.domain.processors import processor_classes; "
        "print(sorted(processor_classes()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == str(
        sorted(
            [
                "annotate_view",
                "catalogue_match",
                "emit_annotations",
                "magnitude_cut",
                "slow_down",
                "solar_system",
                "tag_bright",
            ]
        )
    )


def test_broken_entry_point_is_a_config_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(
        str(dist_info(tmp_path, "broken_plugin", "ghost = brokerapp_no_such_module:Ghost"))
    )
    with pytest.raises(ChainConfigError) as info:
        processor_classes()
    message = str(info.value)
    assert "entry point ghost = brokerapp_no_such_module:Ghost" in message
    assert "broken_plugin" in message and "ModuleNotFoundError" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    # A chain load reports it with the file name, even if the chain does not use the plugin.
    path = write(tmp_path / "c.toml", ONE)
    with pytest.raises(ChainConfigError, match=f"^{path}: entry point ghost"):
        load_chain(path)


def plugin_module(folder: Path, body: str) -> None:
    (folder / "brokerapp_test_plugin_module.py").write_text(
        "from brokerapp.domain.processors import AlertProcessor, Pass\n\n" + textwrap.dedent(body)
    )


@pytest.fixture
def test_plugin_module():
    yield
    sys.modules.pop("brokerapp_test_plugin_module", None)


@pytest.mark.parametrize(
    ("entry", "body", "message"),
    [
        (
            "notproc = brokerapp_test_plugin_module:NotAProcessor",
            "class NotAProcessor:\n    pass\n",
            "entry point notproc .* is not an AlertProcessor subclass",
        ),
        (
            "fn = brokerapp_test_plugin_module:function",
            "def function(alert):\n    return Pass()\n",
            "entry point fn .* is not an AlertProcessor subclass",
        ),
        (
            "renamed = brokerapp_test_plugin_module:Named",
            "class Named(AlertProcessor):\n    name = 'other'\n",
            "entry point renamed .* the class is named 'other'; set its `name` to 'renamed'",
        ),
        (
            "solar_system = brokerapp_test_plugin_module:Clash",
            "class Clash(AlertProcessor):\n    name = 'solar_system'\n",
            "processor name 'solar_system' is taken twice: by built-in "
            "brokerapp.domain.processors.SolarSystem and by entry point solar_system",
        ),
        (
            "exploding = brokerapp_test_plugin_module:Exploding",
            "raise RuntimeError('import-time failure')\n",
            "entry point exploding .* cannot be loaded: RuntimeError: import-time failure",
        ),
    ],
    ids=["not-a-class", "function", "name-mismatch", "clash-with-builtin", "import-fails"],
)
def test_bad_entry_points(tmp_path, monkeypatch, test_plugin_module, entry, body, message):
    plugin_module(tmp_path, body)
    monkeypatch.syspath_prepend(str(dist_info(tmp_path, "bad_plugin", entry)))
    with pytest.raises(ChainConfigError, match=message):
        processor_classes()


def test_two_plugins_with_one_name(tmp_path, monkeypatch, plugin_path, test_plugin_module):
    plugin_module(tmp_path, "class TagBright(AlertProcessor):\n    name = 'tag_bright'\n")
    dist_info(tmp_path, "other_plugin", "tag_bright = brokerapp_test_plugin_module:TagBright")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ChainConfigError, match="processor name 'tag_bright' is taken twice"
    ) as info:
        processor_classes()
    assert "other_plugin" in str(info.value) and "brokerapp-example-plugin" in str(info.value)


def test_plugin_folder_is_not_collected_by_pytest():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/data/plugins",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 5, out.stdout + out.stderr  # 5: no tests collected
    assert PLUGIN_MODULE not in sys.modules


def _alert(survey):
    records = ZTF_RECORDS if survey == "ztf" else LSST_RECORDS
    return Alert.of(next(iter(records.values())))


def test_emit_annotations_sends_what_earlier_processors_added():
    from brokerapp.domain.processors import EmitAnnotations

    alert = _alert("ztf")
    chain = Chain([AnnotateView(fields=["band"]), EmitAnnotations(stream="notes")])
    result = chain.run(alert)
    ((stream, records),) = result.emits
    assert stream == "notes"
    band = {1: "g", 2: "r", 3: "i"}[alert.record["candidate"]["fid"]]
    assert records[0]["annotations"] == {"annotate_view": {"band": band}}
    assert records[0]["alert_id"] == alert.record["candid"]
    assert records[0]["object_id"] == alert.record["objectId"]


def test_emit_annotations_is_silent_without_annotations_unless_told():
    from brokerapp.domain.processors import EmitAnnotations

    assert Chain([EmitAnnotations()]).run(_alert("lsst")).emits == []
    ((stream, _records),) = Chain([EmitAnnotations(always=True)]).run(_alert("lsst")).emits
    assert stream == "annotations"


def _catalogue_near(tmp_path, alert):
    """Sources at known offsets (astropy) from an alert, plus a far one; returns the file."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(alert.view.ra * u.deg, alert.view.dec * u.deg)
    rows = ["src_id,ra,dec,mag"]
    for n, (offset, angle) in enumerate([(1.5, 10), (4.0, 200), (9.0, 90)], start=1):
        point = centre.directional_offset_by(angle * u.deg, offset * u.arcsec)
        rows.append(f"{n},{float(point.ra.deg)!r},{float(point.dec.deg)!r},{15 + n}")
    rows.append("99,10.0,-80.0,12")
    path = tmp_path / "cat.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_catalogue_match_gives_the_nearest_sources_within_the_radius(tmp_path):
    from brokerapp.domain.processors import CatalogueMatch

    alert = _alert("lsst")
    path = _catalogue_near(tmp_path, alert)
    two = CatalogueMatch(
        path=str(path), id_column="src_id", radius_arcsec=5.0, k=2, columns=["mag"]
    )
    result = Chain([two]).run(alert)
    matches = result.annotations["catalogue_match"]["matches"]
    assert [m["id"] for m in matches] == [1, 2]
    assert [m["separation_arcsec"] for m in matches] == pytest.approx([1.5, 4.0], abs=1e-6)
    assert [m["mag"] for m in matches] == [16, 17]
    assert result.annotations["catalogue_match"]["catalogue"] == "cat"
    one = CatalogueMatch(path=str(path), id_column="src_id", radius_arcsec=1.0)
    assert "catalogue_match" not in Chain([one]).run(_alert("lsst")).annotations


@pytest.mark.parametrize(
    ("ra", "dec", "field"),
    [(math.nan, 10.0, "ra"), (10.0, math.nan, "dec"), (360.5, 10.0, "ra"), (10.0, -90.5, "dec")],
)
def test_catalogue_match_refuses_an_impossible_position(tmp_path, ra, dec, field):
    import copy

    from brokerapp.domain.processors import CatalogueMatch

    good = _alert("lsst")
    path = _catalogue_near(tmp_path, good)
    match = CatalogueMatch(path=str(path), id_column="src_id", radius_arcsec=5.0)
    record = copy.deepcopy(good.record)
    record["diaSource"]["ra"], record["diaSource"]["dec"] = ra, dec
    with pytest.raises(ProcessorError, match=rf"ValueError: {field} must be"):
        Chain([match]).run(Alert.of(record))


def test_catalogue_match_configuration_errors(tmp_path):
    from brokerapp.domain.processors import CatalogueMatch

    with pytest.raises(ChainConfigError, match="catalogue_match"):
        CatalogueMatch(path=str(tmp_path / "missing.csv"), id_column="id", radius_arcsec=1.0)
    path = _catalogue_near(tmp_path, _alert("ztf"))
    with pytest.raises(ChainConfigError, match="'k'"):
        CatalogueMatch(path=str(path), id_column="src_id", radius_arcsec=1.0, k=0)


def test_the_package_reexports_its_public_api():
    import brokerapp.domain.processors as package
    from brokerapp.domain.processors import builtin, chainfiles, chains, outcomes, registry
    from brokerapp.model import alert

    assert ENTRY_POINT_GROUP == "brokerapp.processors"
    assert package.Alert is alert.Alert
    assert package.SolarSystem is builtin.SolarSystem
    assert package.ChainFile is chainfiles.ChainFile
    assert package.ProcessorError is chains.ProcessorError
    assert package.Drop is outcomes.Drop
    assert package.processor_classes is registry.processor_classes
    assert sorted(package.__all__) == sorted(set(package.__all__))
    assert all(hasattr(package, name) for name in package.__all__)
