"""Scenario c: the local schema registry down while the gateway has schemas to register.

Chain: the run's upstream daily topics -> gateway -> buffer -> ssfilter -> solar/non-solar
streams, ``faust -A agents.<x> worker`` processes. In three phases:

1. Before: a quarter of the input, under the schemas the gateway will know (the LSST
   samples' schema registered upstream, the ZTF schemas inline in their containers); the
   run waits until the gateway mirrored and ssfilter split all of it.
2. Outage: the local registry is stopped (``Services.stop("registry-local")``) for
   ``--outage-seconds``. The gateway and ssfilter are restarted at once, so their in-memory
   schema caches are empty (the gateway's table still knows its pairs; ssfilter has
   nothing but the registry), and half the input is fed: a tenth under the known schemas,
   then every other alert under a schema never seen: the same alerts with one more optional
   field, registered upstream under a new ID for LSST, inline for ZTF. Mapping those needs
   the local registry. Checked: the gateway pauses those partitions and retries, and
   dead-letters nothing; the known-schema alerts it mirrors meanwhile reach a ssfilter that
   must fetch their schema from the registry that is down.
3. After: the registry is started again (always, in a ``finally``) and waited for; the
   rest of the input, both schemas mixed.

Then every alert must be in the buffer and in its stream, nothing in either dead-letter
topic, and the gateway must have learnt the new upstream ID.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from brokerapp.wire.codecs import parse_schema
from faults.common import (
    Feeder,
    Injected,
    Result,
    Run,
    group_lag,
    injected,
    make_alerts,
    say,
    wait_until,
)
from faults.verify import check_chain, count_deadletters

__all__ = ["run", "variant"]

#: The field the never-seen schemas add (optional, so records need not carry it).
EXTRA_FIELD = {"name": "faultInjected", "type": ["null", "string"], "default": None}


def variant(schema: Any) -> Any:
    """Return the schema with one more optional field at the end (a new canonical form)."""
    raw = copy.deepcopy(schema.raw)
    raw["fields"].append(dict(EXTRA_FIELD))
    return parse_schema(raw)


def with_variants(alerts: list[Injected], every: int = 2) -> list[Injected]:
    """Return the alerts, every ``every``-th under its schema's variant."""
    variants: dict[str, Any] = {}
    out = []
    for n, alert in enumerate(alerts):
        if n % every:
            out.append(alert)
            continue
        schema = variants.setdefault(alert.schema.fingerprint, variant(alert.schema))
        out.append(injected(alert.seq, {**alert.record, "faultInjected": "c"}, schema))
    return out


def run(options: Any, settings: Any) -> Result:
    """Run scenario c; return its result."""
    result = Result("c", f"local schema registry down {options.outage_seconds:.0f} s")
    r = Run("c", settings, keep=options.keep)
    svc = r.svc
    registry_down = False
    ok = False
    try:
        alerts = make_alerts(options.alerts)
        n = len(alerts)
        before, middle = alerts[: n // 4], alerts[n // 4 : 3 * n // 4]
        during = middle[: len(middle) // 10] + with_variants(middle[len(middle) // 10 :])
        after = with_variants(alerts[3 * n // 4 :])
        alerts = before + during + after
        result.injected = n
        r.create_upstream()
        lsst_id = r.register_upstream_lsst()
        lsst_variant = next(
            a.schema for a in during if a.survey == "lsst" and "faultInjected" in a.record
        )
        new_id = r.register_upstream_lsst(lsst_variant.raw)
        say(
            f"c: prefix {r.prefix}; {n} alerts; LSST upstream IDs {lsst_id} (known) and "
            f"{new_id} (new during the outage)"
        )

        def messages(batch: list[Injected]) -> list:
            out = []
            for alert in batch:
                new = "faultInjected" in alert.record
                out += r.upstream_messages([alert], new_id if new else lsst_id)
            return out

        r.worker("gateway")
        r.worker("ssfilter")
        r.start("gateway", "ssfilter")
        gateway, ssfilter = r.workers["gateway"], r.workers["ssfilter"]
        rate = options.rate or 100.0
        feeder = Feeder(settings.upstream_feed_bootstrap, messages(before), rate, name="before")
        feeder.start()
        feeder.finish()
        wait_until(
            lambda: ssfilter.status()["received"] >= len(before),
            timeout=300,
            what=f"{len(before)} alerts through gateway and ssfilter",
            check=r.alive,
        )
        say(f"c: {len(before)} alerts mirrored and split; stopping the local registry")

        svc.stop("registry-local")
        registry_down = True
        stopped = time.monotonic()
        gateway.stop()
        gateway.start()
        ssfilter.stop()
        ssfilter.start()
        say("c: registry down; gateway and ssfilter restarted (schema caches empty)")
        outage = options.outage_seconds
        feeder = Feeder(
            settings.upstream_feed_bootstrap,
            messages(during),
            options.rate or max(5.0, len(during) / max(outage * 0.7, 1.0)),
            name="during",
        )
        feeder.start()
        status = wait_until(
            lambda: (
                (s := gateway.status())["retries"] > 0
                and any(p["paused"] for p in s["partitions"])
                and s
            ),
            timeout=max(outage, 10),
            what="the gateway to pause for the registry",
            poll=0.5,
            check=r.alive,
        )
        reason = next(p["paused"] for p in status["partitions"] if p["paused"])
        result.check(
            status["deadlettered"] == 0,
            f"gateway paused {sum(1 for p in status['partitions'] if p['paused'])} "
            f"partition(s) and retries, nothing dead-lettered (reason: {reason[:90]})",
        )
        remaining = outage - (time.monotonic() - stopped)
        if remaining > 0:
            time.sleep(remaining)
        feeder.finish()
        status, split = gateway.status(), ssfilter.status()
        say(
            f"c: outage over after {time.monotonic() - stopped:.0f} s: gateway mirrored "
            f"{status['mirrored']} since its restart, {status['retries']} retries, "
            f"{status['deadlettered']} dead-lettered; ssfilter received {split['received']}, "
            f"dead-lettered {split['deadlettered']}; starting the registry"
        )
        result.note(
            f"while the registry was down: gateway mirrored {status['mirrored']} "
            f"(known schemas), ssfilter received {split['received']} and dead-lettered "
            f"{split['deadlettered']}"
        )
        registry = svc.registry("local")
        svc.start(registry)
        svc.wait_ready([registry])
        registry_down = False
        say(f"c: registry answering again, {time.monotonic() - stopped:.0f} s after the stop")
        feeder = Feeder(settings.upstream_feed_bootstrap, messages(after), rate, name="after")
        feeder.start()
        feeder.finish()
        wait_until(
            lambda: (
                not group_lag(
                    settings.upstream_feed_bootstrap, r.group("gateway"), list(r.upstream.values())
                )
                and not group_lag(r.bootstrap, r.group("ssfilter"), [r.topics["alerts"]])
            ),
            timeout=600,
            what="zero lag",
            poll=2.0,
            check=r.alive,
        )
        status = gateway.status()
        result.check(
            f"confluent:{new_id}" in status["schema_ids"],
            f"gateway learnt the new upstream ID {new_id} -> local "
            f"{status['schema_ids'].get(f'confluent:{new_id}')}",
        )
        result.note(
            f"gateway after the restart: {status['mirrored']} mirrored, "
            f"{status['retries']} registry retries, registry calls {status['registry_calls']}"
        )
        check_chain(r, alerts, result, stages=("alerts", "split"))
        result.deadlettered, dead = count_deadletters(
            r, [r.topics["gateway-deadletter"], r.deadletter("ssfilter")]
        )
        result.check(not result.deadlettered, f"dead letters: {dead}")
        ok = result.verdict != "FAIL"
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
        result.failures.append(f"{type(exc).__name__}: {exc}")
        say(f"c: error: {exc!r}")
    finally:
        if registry_down or svc.pid("registry-local") is None:
            try:
                registry = svc.registry("local")
                svc.start(registry)
                svc.wait_ready([registry])
                say("c: local registry started again")
            except Exception as exc:  # noqa: BLE001
                result.failures.append(f"restarting the local registry: {exc}")
                say(f"c: RESTARTING THE LOCAL REGISTRY FAILED: {exc!r}")
        r.cleanup(ok)
    return result
