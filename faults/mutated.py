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
``garbage``         random bytes of random length (empty included), not framed.

*invalid values* -- valid Avro with physically impossible values, each under a fresh alert
ID: ``nan-coordinates`` (ra and dec NaN), ``out-of-range-coordinates`` (ra outside [0, 360)
or dec outside [-90, 90]), ``huge-values`` (magnitudes or fluxes and their errors 1e308).
Each must be found somewhere (an output or a dead-letter topic with a reason); where they
went is reported per kind, and those no worker dead-letters are listed as gaps.

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
INVALID = ("nan-coordinates", "out-of-range-coordinates", "huge-values")
WORKERS = ("ssfilter", "candidates", "crossmatch", "watchlist")
#: Bit flips land in the first bytes of a message: the header and the alert's own fields.
FLIP_SPAN = 5 + 1024
#: Seconds the stream is spread over.
FEED_SECONDS = 40.0


def _position_holder(record: dict) -> dict:
    return record["candidate"] if "candidate" in record else record["diaSource"]


def invalid_record(kind: str, alert: Injected, rng: random.Random) -> dict:
    """Return a copy of the alert's record with impossible values of one kind."""
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
        names = ("magpsf", "sigmapsf") if key == "candidate" else ("psfFlux", "psfFluxErr")
        for name in names:
            holder[name] = 1e308
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
                if value[:1] == b"\x00":  # framed garbage: an unknown ID, or a known one
                    value = b"\x01" + value[1:]
            if self.ids.record(value) is None:
                return value
            self.redrawn += 1
        raise RuntimeError(f"no undecodable {kind} mutation found")


def build(r: Run, good: list[Injected], count: int) -> tuple[list[Message], dict[int, str]]:
    """Return the shuffled stream (good and mutated) and the kind of each mutated seq."""
    ids = AlertIds(r.settings.registry_url)
    messages = r.local_messages(good, r.topics["alerts"])
    good_values = [m.value for m in messages]
    mutator = Mutator(ids)
    kinds = UNDECODABLE + INVALID
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
    return messages, kind_of


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
        messages, kind_of = build(r, good, options.mutated)
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
        check(r, good, kind_of, result)
        ok = result.verdict != "FAIL"
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
        result.failures.append(f"{type(exc).__name__}: {exc}")
        say(f"d: error: {exc!r}")
    finally:
        r.cleanup(ok)
    return result


def check(r: Run, good: list[Injected], kind_of: dict[int, str], result: Result) -> None:
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

    # Undecodable: in ssfilter's dead letters (with a reason) and nowhere else.
    found = set(streams["solar"]) | set(streams["nonsolar"]) | set(cands) | set(notes)
    reasons: dict[str, Counter] = defaultdict(Counter)
    lost_bad: list[int] = []
    leaked: list[int] = []
    for seq, kind in kind_of.items():
        if kind not in UNDECODABLE:
            continue
        places = dead.get(seq, [])
        if not any(name == "ssfilter" for name, _ in places):
            lost_bad.append(seq)
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
    result.check(not leaked, f"{len(leaked)} undecodable message(s) in an output topic")
    for kind in UNDECODABLE:
        common = ", ".join(f"{n}x '{reason}'" for reason, n in reasons[kind].most_common(3))
        result.note(f"{kind}: {common}")

    # Invalid values: found somewhere; where, per kind.
    lost_invalid: list[int] = []
    for kind in INVALID:
        seqs = [s for s, k in kind_of.items() if k == kind]
        where: Counter = Counter()
        passed = 0
        for seq in seqs:
            places = {name for name, _ in dead.get(seq, [])}
            where.update(places)
            if not places and seq not in found:
                lost_invalid.append(seq)
            if not places:
                passed += 1
        stored = sum(1 for s in seqs if s in cands)
        detail = ", ".join(f"{n} by {w}" for w, n in sorted(where.items())) or "none"
        result.note(
            f"{kind}: {len(seqs)} sent; dead-lettered {detail}; {stored} became "
            f"CandidateUpdates; {passed} dead-lettered by no worker"
        )
        if passed:
            result.gaps.append(f"{passed} {kind} alert(s) dead-lettered by no worker")
    result.lost = len(lost_good) + len(lost_bad) + len(lost_invalid)
    result.check(not lost_invalid, f"{len(lost_invalid)} invalid-value message(s) found nowhere")
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
