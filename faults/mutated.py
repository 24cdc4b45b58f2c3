"""Scenario d: mutated messages mixed into a real stream, written straight into the buffer.

The run's local buffer (``alerts``, where the gateway writes) gets the good alerts, framed
as the gateway frames them (local schema ID, keyed by object), and ``--mutated`` bad
messages made from them, shuffled together and written at a steady rate. Each message
carries a ``fault-seq`` header (its number) so it can be found anywhere, including in a
dead-letter topic. Workers: ssfilter (reads the buffer), candidates (both streams),
crossmatch (non-solar stream, a catalogue with a source by each sample) and watchlist
(non-solar and solar streams, no watchlist loaded), each ``faust -A agents.<x> worker``.

Mutations, in equal numbers:

*undecodable* -- no decoder can read them, every one must be in ssfilter's dead-letter
topic with an ``error-reason`` header, and nowhere else:

``truncated``       a good message cut at a random length (0 included);
``bit-flip``        one to three bits flipped in the first kilobyte of the Avro body (the
                    alert's own fields: a flip in cutout bytes can be seen by no decoder);
                    flips that still decode (a changed number, say) are drawn again;
``magic-byte``      the first byte not 0;
``unknown-schema``  a schema ID the registry does not know;
``garbage``         random bytes of random length (empty included), a quarter of them with
                    a zero first byte (so framed, with a random schema ID).

Each must be in ssfilter's dead-letter topic (the first worker that reads the buffer) with
an ``error-reason`` that fits what its bytes are, decided here from the bytes alone: a bad
frame (``magic byte``, ``shorter than``), a schema ID the registry does not know, or a body
that does not decode with the schema its ID names.

*invalid values* -- valid Avro with physically impossible values, each under a fresh alert
ID: ``nan-coordinates`` (ra and dec NaN), ``out-of-range-coordinates`` (ra outside [0, 360]
or dec outside [-90, 90]), ``non-finite-photometry`` (the magnitude or flux infinite). Each
must be dead-lettered by every worker that reads the field (:data:`READERS`: candidates,
crossmatch and watchlist read the position, candidates the photometry) with the field named
in the reason, and be in none of their outputs.

*extreme but valid* -- ``extreme-valid``: real values at the edges (:data:`EXTREMES`: a
signal-to-noise 0.02 detection, negative and tiny fluxes, the poles, RA 0 and 360), each
under a fresh alert ID. They are good alerts: each must get its CandidateUpdate and be
dead-lettered by nobody.

Every mutated message is judged one by one; any that is not where it must be is a ``FAIL``.

Checks: every worker answers its status page and none exits, throughout; every good alert in
its stream, with a CandidateUpdate, and (non-solar) a crossmatch annotation; no good alert
dead-lettered.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections import Counter, defaultdict
from typing import Any

from brokerapp.model.profiles import profile_for
from faults.common import (
    ID_BASE,
    AlertIds,
    Feeder,
    Injected,
    Message,
    Result,
    Run,
    group_lag,
    headers_of,
    injected,
    make_alerts,
    say,
    scan,
    wait_until,
)

__all__ = ["INVALID", "UNDECODABLE", "run"]

UNDECODABLE = ("truncated", "bit-flip", "magic-byte", "unknown-schema", "garbage")
INVALID = ("nan-coordinates", "out-of-range-coordinates", "non-finite-photometry")
EXTREME = "extreme-valid"
#: Which workers read each invalid field, so must refuse it (their dead-letter topic, with the
#: field named in the reason), for a non-solar and a solar alert: ssfilter reads only the
#: solar-system fields and forwards them; crossmatch and watchlist read the position of the
#: non-solar stream (on the solar stream watchlist matches names, not positions).
READERS = {
    "nan-coordinates": {
        False: ("candidates", "crossmatch", "watchlist"),
        True: ("candidates",),
    },
    "out-of-range-coordinates": {
        False: ("candidates", "crossmatch", "watchlist"),
        True: ("candidates",),
    },
    "non-finite-photometry": {False: ("candidates",), True: ("candidates",)},
}
#: The field names a reason must contain for each invalid kind (one of them).
FIELDS = {
    "nan-coordinates": ("ra", "dec"),
    "out-of-range-coordinates": ("ra", "dec"),
    "non-finite-photometry": ("mag", "flux"),
}
#: Dead-letter reasons that fit an undecodable message, by what its bytes are (decided from
#: the bytes here, independently of the broker): a bad frame, a schema ID the registry does
#: not know, or a body that does not decode with the schema it names.
REASON_FITS = {
    "frame": re.compile(r"magic byte|shorter than|neither Avro container nor Confluent"),
    "schema": re.compile(r"unknown schema ID"),
    "body": re.compile(r"truncated or corrupt Avro body|trailing bytes after record"),
}
WORKERS = ("ssfilter", "candidates", "crossmatch", "watchlist")
#: Bit flips land in the first bytes of a message: the header and the alert's own fields.
FLIP_SPAN = 5 + 1024
#: Seconds the stream is spread over.
FEED_SECONDS = 40.0


def _position_holder(record: dict) -> dict:
    return record["candidate"] if "candidate" in record else record["diaSource"]


def invalid_record(kind: str, alert: Injected, rng: random.Random) -> dict:
    """Return a copy of the alert's record with impossible values of one kind.

    ``non-finite-photometry`` makes the detection's magnitude (ZTF) or flux (LSST) infinite:
    no instrument measures that. A huge value that is finite (a flux error of 1e3 nJy on a
    12 nJy flux, a magnitude error of 60) is a real faint measurement, see
    :func:`extreme_record`.
    """
    record = dict(alert.record)
    key = "candidate" if "candidate" in record else "diaSource"
    holder = dict(record[key])
    record[key] = holder
    if kind == "nan-coordinates":
        holder["ra"], holder["dec"] = math.nan, math.nan
    elif kind == "out-of-range-coordinates":
        if rng.random() < 0.5:
            holder["ra"] = rng.choice([-10.0, 360.5, 1e6])
        else:
            holder["dec"] = rng.choice([-95.0, 90.5, 1e6])
    else:
        name = "magpsf" if key == "candidate" else "psfFlux"
        holder[name] = rng.choice([math.inf, -math.inf])
    return record


#: Extreme but valid values (each physically possible, each seen in real alerts): a faint
#: detection with a huge error, a negative and a tiny difference flux, the poles, RA at both
#: ends of its range.
EXTREMES = (
    "huge-error",
    "negative-flux",
    "tiny-flux",
    "north-pole",
    "south-pole",
    "ra-zero",
    "ra-360",
)


def extreme_record(variant: str, alert: Injected) -> dict:
    """Return a copy of the alert's record with one extreme but valid value."""
    record = dict(alert.record)
    key = "candidate" if "candidate" in record else "diaSource"
    holder = dict(record[key])
    record[key] = holder
    ztf = key == "candidate"
    if variant == "huge-error":
        if ztf:
            holder["sigmapsf"] = 63.37  # the magnitude error of a S/N 0.02 detection
        else:
            holder["psfFlux"], holder["psfFluxErr"] = 12.35, 720.6  # a real Rubin 7.4 source
    elif variant == "negative-flux":
        if ztf:
            holder["isdiffpos"] = "f"  # ZTF: a negative difference, magnitude of its size
        else:
            holder["psfFlux"] = -1523.0
    elif variant == "tiny-flux":
        if ztf:
            holder["magpsf"], holder["sigmapsf"] = 24.9, 1.5
        else:
            holder["psfFlux"], holder["psfFluxErr"] = 1e-3, 250.0
    elif variant == "north-pole":
        holder["dec"] = 90.0
    elif variant == "south-pole":
        holder["dec"] = -90.0
    elif variant == "ra-zero":
        holder["ra"] = 0.0
    else:
        holder["ra"] = 360.0
    return record


class Mutator:
    """Make the mutated messages from the good ones.

    Parameters
    ----------
    ids : AlertIds
        The independent decoder (a mutation it reads is not undecodable).
    seed : int
        Seed of the random choices.
    """

    def __init__(self, ids: AlertIds, seed: int = 7):
        self.ids = ids
        self.rng = random.Random(seed)
        self.redrawn = 0
        # Schema IDs far above what the registry hands out (it numbers from 1), each checked.
        self.unknown_ids = [
            i for i in self.rng.sample(range(10**8, 2**31), 200) if ids.schema(i) is None
        ]

    def undecodable(self, kind: str, good: bytes) -> bytes:
        """Return one undecodable mutation of a good message."""
        rng = self.rng
        for _attempt in range(1000):
            if kind == "truncated":
                value = good[: rng.randrange(len(good))]
            elif kind == "bit-flip":
                data = bytearray(good)
                for _ in range(rng.randint(1, 3)):
                    data[rng.randrange(5, min(len(data), FLIP_SPAN))] ^= 1 << rng.randrange(8)
                value = bytes(data)
            elif kind == "magic-byte":
                value = bytes([rng.randrange(1, 256)]) + good[1:]
            elif kind == "unknown-schema":
                value = b"\x00" + rng.choice(self.unknown_ids).to_bytes(4, "big") + good[5:]
            else:
                value = rng.randbytes(rng.randrange(0, 4096))
                if rng.random() < 0.25:  # framed garbage too: an unknown ID, or a known one
                    value = b"\x00" + value[1:]
            if self.ids.record(value) is None:
                return value
            self.redrawn += 1
        raise RuntimeError(f"no undecodable {kind} mutation found")


def build(
    r: Run, good: list[Injected], count: int
) -> tuple[list[Message], dict[int, str], dict[int, Injected]]:
    """Return the shuffled stream, the kind of each mutated seq and the valid-Avro mutations."""
    ids = AlertIds(r.settings.registry_url)
    messages = r.local_messages(good, r.topics["alerts"])
    good_values = [m.value for m in messages]
    mutator = Mutator(ids)
    kinds = (*UNDECODABLE, *INVALID, EXTREME)
    kind_of: dict[int, str] = {}
    invalid: list[Injected] = []
    started = time.monotonic()
    for n in range(count):
        seq = len(good) + n
        kind = kinds[n % len(kinds)]
        kind_of[seq] = kind
        base = mutator.rng.randrange(len(good))
        if kind in UNDECODABLE:
            value = mutator.undecodable(kind, good_values[base])
            key = messages[base].key
            headers = [("fault-seq", str(seq).encode()), ("fault-kind", kind.encode())]
            messages.append(Message(r.topics["alerts"], key, value, headers))
        else:
            alert = good[base]
            fresh = profile_for(alert.record).with_alert_id(alert.record, ID_BASE + seq)
            if kind == EXTREME:
                variant = EXTREMES[n // len(kinds) % len(EXTREMES)]
                kind_of[seq] = f"{EXTREME}:{variant}"
                record = extreme_record(variant, injected(seq, fresh, alert.schema))
            else:
                record = invalid_record(kind, injected(seq, fresh, alert.schema), mutator.rng)
            invalid.append(injected(seq, record, alert.schema))
    for message, alert in zip(r.local_messages(invalid, r.topics["alerts"]), invalid, strict=True):
        message.headers.append(("fault-kind", kind_of[alert.seq].encode()))
        messages.append(message)
    say(
        f"d: {count} mutations made in {time.monotonic() - started:.1f} s "
        f"({mutator.redrawn} draws that still decoded were redrawn)"
    )
    random.Random(11).shuffle(messages)
    return messages, kind_of, {a.seq: a for a in invalid}


def reason_class(value: bytes, ids: AlertIds) -> str:
    """Say what an undecodable message's bytes are: ``frame``, ``schema`` or ``body``.

    Decided from the bytes and the registry, not by the broker: shorter than the 5-byte
    Confluent header or a first byte other than 0 is a bad frame; a schema ID the registry
    does not know is ``schema``; anything else is a body that does not decode.
    """
    if len(value) < 5 or value[0] != 0:
        return "frame"
    if ids.schema(int.from_bytes(value[1:5], "big")) is None:
        return "schema"
    return "body"


def _gist(reason: str) -> str:
    """Return the gist of a dead-letter reason: after the prefix, digits as N, 70 chars."""
    text = reason.split("): ", 1)[-1]
    return re.sub(r"\d+", "N", text)[:70]


def _seq(msg: Any) -> int | None:
    value = headers_of(msg).get("fault-seq")
    return int(value) if value is not None else None


def run(options: Any, settings: Any) -> Result:
    """Run scenario d; return its result."""
    result = Result("d", f"{options.mutated} mutated messages in the stream")
    r = Run("d", settings, keep=options.keep)
    ok = False
    try:
        good = make_alerts(options.alerts)
        say(f"d: prefix {r.prefix}; {len(good)} good alerts, {options.mutated} mutated")
        r.write_crossmatch_chain(good)
        messages, kind_of, invalid = build(r, good, options.mutated)
        result.injected = len(messages)
        for name in WORKERS:
            r.worker(name)
        r.start(*WORKERS)
        rate = options.rate or max(50.0, len(messages) / FEED_SECONDS)
        feeder = Feeder(r.bootstrap, messages, rate, name="buffer")
        say(f"d: writing {len(messages)} messages into {r.topics['alerts']} at {rate:.0f}/s")
        feeder.start()
        down: Counter = Counter()
        groups = {
            "ssfilter": [r.topics["alerts"]],
            "candidates": [r.topics["nonsolar"], r.topics["solar"]],
            "crossmatch": [r.topics["nonsolar"]],
            "watchlist": [r.topics["nonsolar"], r.topics["solar"]],
        }

        def settled() -> bool:
            for name, status in r.statuses().items():
                if status is None:
                    down[name] += 1
            if feeder.is_alive():
                return False
            return not any(group_lag(r.bootstrap, r.group(n), t) for n, t in groups.items())

        wait_until(
            settled, timeout=900, what="every worker through the stream", poll=2.0, check=r.alive
        )
        feeder.finish()
        result.check(
            not down,
            "every worker answered its status page throughout"
            + (f" (not: {dict(down)})" if down else ""),
        )
        check(r, good, kind_of, invalid, {m.seq: m.value for m in _seqs(messages)}, result)
        ok = result.verdict != "FAIL"
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
        result.failures.append(f"{type(exc).__name__}: {exc}")
        say(f"d: error: {exc!r}")
    finally:
        r.cleanup(ok)
    return result


def _seqs(messages: list[Message]) -> list[Any]:
    """Return the undecodable messages with their fault-seq, as (seq, value) records."""
    out = []
    for m in messages:
        seq = dict(m.headers).get("fault-seq")
        if seq is not None:
            out.append(_Sent(int(seq), m.value))
    return out


class _Sent:
    """A mutated message as sent: its fault-seq and value."""

    __slots__ = ("seq", "value")

    def __init__(self, seq: int, value: bytes):
        self.seq = seq
        self.value = value


def check(
    r: Run,
    good: list[Injected],
    kind_of: dict[int, str],
    invalid: dict[int, Injected],
    values: dict[int, bytes],
    result: Result,
) -> None:
    """Read every output and dead-letter topic back and judge each message."""
    t = r.topics
    dead: dict[int, list[tuple[str, str]]] = defaultdict(list)
    no_reason = 0
    for name in WORKERS:

        def handle(msg: Any, name: str = name) -> None:
            nonlocal no_reason
            seq = _seq(msg)
            reason = headers_of(msg).get("error-reason", b"").decode(errors="replace")
            if not reason:
                no_reason += 1
            dead[seq if seq is not None else -1].append((name, reason))

        scan(r.bootstrap, r.deadletter(name), handle)
    total = sum(len(v) for v in dead.values())
    result.deadlettered = sum(1 for seq in dead if seq is not None and seq >= 0)
    say(f"d: {total} dead letters read, of {result.deadlettered} distinct messages")
    result.note(
        f"{total} dead letters of {result.deadlettered} distinct messages (an alert refused by "
        "several workers is in several dead-letter topics)"
    )
    result.check(no_reason == 0, f"{no_reason} dead letter(s) without an error-reason header")
    result.check(-1 not in dead, f"{len(dead.get(-1, []))} dead letter(s) lost their fault-seq")

    streams: dict[str, Counter] = {}
    for stream in ("solar", "nonsolar"):
        copies: Counter = Counter()
        scan(r.bootstrap, t[stream], lambda msg, c=copies: c.update([_seq(msg)]))
        streams[stream] = copies
    cands: Counter = Counter()
    for topic in (t["candidates"], t["ss_candidates"]):
        scan(r.bootstrap, topic, lambda m: cands.update([_json_seq(m)]))
    notes: Counter = Counter()
    scan(r.bootstrap, t["annotations"], lambda m: notes.update([_json_seq(m)]))
    result.duplicated = sum(
        n - 1 for c in (*streams.values(), cands, notes) for n in c.values() if n > 1
    )

    # Good alerts: in their stream, a CandidateUpdate, an annotation if non-solar, no DLQ.
    lost_good, misrouted, dead_good = [], [], []
    for alert in good:
        mine, other = ("solar", "nonsolar") if alert.solar else ("nonsolar", "solar")
        seq = alert.seq
        if seq in streams[other]:
            misrouted.append(seq)
        if seq not in streams[mine] or seq not in cands or (not alert.solar and seq not in notes):
            lost_good.append(seq)
        if seq in dead:
            dead_good.append((seq, dead[seq]))
    result.processed = len(good) - len(lost_good)
    result.check(
        not lost_good,
        f"good alerts processed: {result.processed}/{len(good)}"
        + (f", missing e.g. seq {lost_good[:5]}" if lost_good else ""),
    )
    result.check(not misrouted, f"{len(misrouted)} good alert(s) in the wrong stream")
    result.check(not dead_good, f"{len(dead_good)} good alert(s) dead-lettered {dead_good[:2]}")

    # Undecodable: in ssfilter's dead letters with a reason that fits its bytes, nowhere else.
    found = set(streams["solar"]) | set(streams["nonsolar"]) | set(cands) | set(notes)
    ids = AlertIds(r.settings.registry_url)
    reasons: dict[str, Counter] = defaultdict(Counter)
    lost_bad: list[int] = []
    unfit: list[tuple[int, str, str, str]] = []
    leaked: list[int] = []
    accounted: dict[str, Counter] = defaultdict(Counter)  # kind -> sent, as required
    for seq, kind in kind_of.items():
        if kind not in UNDECODABLE:
            continue
        accounted[kind]["sent"] += 1
        places = dead.get(seq, [])
        first = [reason for name, reason in places if name == "ssfilter"]
        if not first:
            lost_bad.append(seq)
        else:
            want = reason_class(values[seq], ids)
            if not REASON_FITS[want].search(first[0]):
                unfit.append((seq, kind, want, first[0][:80]))
            elif seq not in found:
                accounted[kind]["as required"] += 1
        for _name, reason in places:
            reasons[kind][_gist(reason)] += 1
        if seq in found:
            leaked.append(seq)
    undecodable = sum(1 for k in kind_of.values() if k in UNDECODABLE)
    result.check(
        not lost_bad,
        f"undecodable in ssfilter's dead letters: {undecodable - len(lost_bad)}/{undecodable}"
        + (f", missing e.g. {[(s, kind_of[s]) for s in lost_bad[:4]]}" if lost_bad else ""),
    )
    result.check(
        not unfit,
        f"undecodable with a reason that fits the bytes: {undecodable - len(lost_bad) - len(unfit)}"
        f"/{undecodable - len(lost_bad)}" + (f", not e.g. {unfit[:3]}" if unfit else ""),
    )
    result.check(not leaked, f"{len(leaked)} undecodable message(s) in an output topic")
    for kind in UNDECODABLE:
        common = ", ".join(f"{n}x '{reason}'" for reason, n in reasons[kind].most_common(3))
        result.note(f"{kind}: {common}")

    # Invalid values: refused by every worker that reads the field, the field named, and in
    # none of those workers' outputs (crossmatch may annotate an alert whose photometry is
    # bad: it never reads it).
    outputs = {"candidates": cands, "crossmatch": notes}
    lost_invalid: list[int] = []
    for kind in INVALID:
        seqs = [s for s, k in kind_of.items() if k == kind]
        missing: Counter = Counter()
        unnamed: list[tuple[int, str, str]] = []
        forwarded = 0
        for seq in seqs:
            by = {name: reason for name, reason in dead.get(seq, [])}
            bad = False
            readers = READERS[kind][invalid[seq].solar]
            for reader in readers:
                if reader not in by:
                    missing[reader] += 1
                    bad = True
                elif not any(re.search(rf"\b{f}", by[reader]) for f in FIELDS[kind]):
                    unnamed.append((seq, reader, by[reader][:80]))
                    bad = True
            if any(seq in outputs[reader] for reader in readers if reader in outputs):
                forwarded += 1
                bad = True
            accounted[kind]["sent"] += 1
            if bad:
                lost_invalid.append(seq)
            else:
                accounted[kind]["as required"] += 1
        readers = ", ".join(READERS[kind][False])
        result.check(
            not missing and not unnamed and not forwarded,
            f"{kind}: {len(seqs)} sent, each dead-lettered by {readers} with the field named"
            + (f"; not dead-lettered by {dict(missing)}" if missing else "")
            + (f"; reason without the field e.g. {unnamed[:2]}" if unnamed else "")
            + (f"; {forwarded} in a reader's output" if forwarded else ""),
        )

    # Extreme but valid: good alerts, so in their stream with a CandidateUpdate, no dead letter.
    refused: list[tuple[int, str, Any]] = []
    dropped: list[tuple[int, str]] = []
    extremes = {s: a for s, a in invalid.items() if kind_of[s].startswith(EXTREME)}
    for seq, alert in extremes.items():
        mine = "solar" if alert.solar else "nonsolar"
        accounted[kind_of[seq]]["sent"] += 1
        if seq in dead:
            refused.append((seq, kind_of[seq], dead[seq][:1]))
        if seq not in streams[mine] or seq not in cands:
            dropped.append((seq, kind_of[seq]))
        elif seq not in dead:
            accounted[kind_of[seq]]["as required"] += 1
    result.check(
        not refused and not dropped,
        f"extreme but valid: {len(extremes) - len(set(s for s, *_ in refused + dropped))}"
        f"/{len(extremes)} stored as CandidateUpdates, dead-lettered by nobody"
        + (f"; refused e.g. {refused[:2]}" if refused else "")
        + (f"; missing e.g. {dropped[:3]}" if dropped else ""),
    )
    result.lost = len(lost_good) + len(lost_bad) + len(lost_invalid) + len(dropped)
    result.note(
        "per message: "
        + "; ".join(
            f"{kind} {c['as required']}/{c['sent']}" for kind, c in sorted(accounted.items())
        )
        + f"; good {result.processed}/{len(good)} (as required/sent)"
    )
    statuses = r.statuses()
    result.check(
        all(statuses.values()),
        "every worker answers at the end: "
        + ", ".join(f"{n} {'up' if s else 'DOWN'}" for n, s in statuses.items()),
    )


def _json_seq(msg: Any) -> int | None:
    seq = _seq(msg)
    if seq is not None:
        return seq
    alert_id = json.loads(msg.value()).get("alert_id")
    return None if alert_id is None else alert_id - ID_BASE
