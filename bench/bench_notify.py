"""What the notifiers cost: VOEvents and emails per second (and webhooks), no Kafka.

Usage: ``python -m bench.bench_notify [--voevents 2000] [--emails 200] [--webhooks 500]``

Prints, and asserts nothing (figures depend on the machine and what else runs on it):

1. VOEvent: building one packet from a Notice of a sample alert
   (:func:`brokerapp.domain.notify.voevent.packet`) and checking it against the VOEvent 2.0
   schema with lxml; bytes per packet. Then the VTP broadcaster sending ``--voevents``
   packets to a real Comet subscriber (``twistd comet``) until every one is acknowledged.
2. Email: building one per-alert message (text, HTML, the light curve drawn as PNG), and
   building and sending through aiosmtpd (in this process) with aiosmtplib, one connection
   per message as the sender does; bytes per message.
3. Webhooks: signing and POSTing ``--webhooks`` bodies to a local aiohttp receiver (HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import tempfile
import time
from pathlib import Path

import fastavro
from aiohttp import web

from brokerapp.adapters.notify.smtp import SmtpSender
from brokerapp.adapters.notify.vtp import VTPBroadcaster
from brokerapp.domain.notify import email as mail
from brokerapp.domain.notify import webhooks as hooks
from brokerapp.domain.notify.notices import Notice, from_annotated
from brokerapp.domain.notify.voevent import PacketSettings, ivorn, packet, validate
from brokerapp.model.settings import load_settings

DATA = Path(__file__).parents[1] / "tests" / "data"
PARAMS = PacketSettings(
    "bench.example.org", "alerts", "bench", "b@example.org", "http://x/{alert_id}"
)


def notices() -> list[Notice]:
    out = []
    for path in sorted(DATA.glob("ztf/*.avro")):
        record = next(fastavro.reader(io.BytesIO(path.read_bytes())))
        annotation = {
            "alert_id": record["candidate"]["candid"],
            "object_id": record["objectId"],
            "watchlist_id": "wl1",
            "entry": "e",
            "separation_arcsec": 1.0,
            "mjd": None,
        }
        out.append(from_annotated({"alert": record, "annotations": [annotation]}))
    return out


def renamed(notice: Notice, i: int) -> Notice:
    return Notice(
        notice.kind,
        notice.survey,
        notice.alert_id + i,
        notice.object_id,
        notice.ra,
        notice.dec,
        notice.mjd,
        notice.matches,
        notice.light_curve,
    )


def rate(label: str, count: int, seconds: float, extra: str = "") -> None:
    line = f"   {label:44s} {count / seconds:9.1f} /s  ({1e3 * seconds / count:7.2f} ms each)"
    print(line + extra, flush=True)


async def bench_voevents(items: list[Notice], count: int) -> None:
    print("1. VOEvent", flush=True)
    started = time.perf_counter()
    sizes = []
    for i in range(count):
        data = packet(PARAMS, items[i % len(items)])
        validate(data)
        sizes.append(len(data))
    rate(
        "packet + XSD check",
        count,
        time.perf_counter() - started,
        f"  {sum(sizes) / len(sizes):.0f} bytes/packet",
    )
    await bench_raw_vtp(items, count)
    with tempfile.TemporaryDirectory() as tmp:
        from tests.integration.notify_servers import CometSubscriber, free_port

        vtp = VTPBroadcaster("127.0.0.1", free_port(), "ivo://bench/vtp", 60.0, 60.0)
        await vtp.start()
        comet = CometSubscriber(Path(tmp), "127.0.0.1", vtp.port)
        comet.start()
        try:
            while vtp.status()["subscribers"] < 1:
                await asyncio.sleep(0.2)
            packets = [renamed(items[i % len(items)], i) for i in range(count)]
            started = time.perf_counter()
            for n in packets:
                await vtp.broadcast(packet(PARAMS, n), ivorn(PARAMS, n))
            deadline = time.monotonic() + 120
            while vtp.status()["acked"] < count and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            acked = vtp.status()["acked"]
            elapsed = time.perf_counter() - started
            rate(f"VTP to Comet: {acked} of {count} acked", max(acked, 1), elapsed)
        finally:
            comet.stop()
            await vtp.stop()


async def bench_raw_vtp(items: list[Notice], count: int) -> None:
    """The broadcaster alone: a minimal asyncio subscriber that acknowledges each event."""
    from brokerapp.domain.notify.voevent import Deframer, frame, transport
    from tests.integration.notify_servers import free_port

    vtp = VTPBroadcaster("127.0.0.1", free_port(), "ivo://bench/vtp", 60.0, 60.0)
    await vtp.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", vtp.port)

    async def subscriber() -> None:
        deframer = Deframer()
        while data := await reader.read(65536):
            for message in deframer.feed(data):
                root = message[message.find(b"ivorn=") + 7 :]
                name = root[: root.find(b'"')].decode()
                writer.write(frame(transport("ack", name, "ivo://bench/sub")))

    task = asyncio.ensure_future(subscriber())
    try:
        while vtp.status()["subscribers"] < 1:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        for i in range(count):
            n = renamed(items[i % len(items)], i)
            await vtp.broadcast(packet(PARAMS, n), ivorn(PARAMS, n))
        while vtp.status()["acked"] < count:
            await asyncio.sleep(0.005)
        rate("packet + VTP send, minimal subscriber acking", count, time.perf_counter() - started)
    finally:
        task.cancel()
        writer.close()
        await vtp.stop()


async def bench_emails(items: list[Notice], count: int) -> None:
    from aiosmtpd.controller import Controller

    print("2. Email", flush=True)
    settings = mail.MessageSettings("b@localhost", "http://x", b"k", "http://x/{alert_id}")
    started = time.perf_counter()
    sizes = []
    for i in range(count):
        message = mail.alert_message(settings, "s", "a@example.org", items[i % len(items)], 0.0)
        sizes.append(len(message.as_bytes()))
    rate(
        "per-alert message with its PNG",
        count,
        time.perf_counter() - started,
        f"  {sum(sizes) / len(sizes):.0f} bytes/message",
    )

    class Sink:
        received = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            Sink.received += 1
            return "250 OK"

    from tests.integration.notify_servers import free_port

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sender = SmtpSender(load_settings(smtp_port=port))
        started = time.perf_counter()
        for i in range(count):
            message = mail.alert_message(settings, "s", "a@example.org", items[i % len(items)], 0.0)
            await sender.send(message)
        rate("message + SMTP send (aiosmtpd)", count, time.perf_counter() - started)
    finally:
        controller.stop()


async def bench_webhooks(items: list[Notice], count: int) -> None:
    print("3. Webhooks", flush=True)
    from brokerapp.adapters.notify.http import WebhookClient

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    client = WebhookClient(load_settings())
    try:
        started = time.perf_counter()
        for i in range(count):
            body = hooks.body("s", items[i % len(items)], "http://x")
            await client.post(f"http://127.0.0.1:{port}/hook", body, hooks.headers("k", "d", body))
        rate("body + HMAC + POST (aiohttp receiver)", count, time.perf_counter() - started)
    finally:
        await client.close()
        await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voevents", type=int, default=2000)
    parser.add_argument("--emails", type=int, default=200)
    parser.add_argument("--webhooks", type=int, default=500)
    args = parser.parse_args()
    items = notices()
    await bench_voevents(items, args.voevents)
    await bench_emails(items, args.emails)
    await bench_webhooks(items, args.webhooks)


if __name__ == "__main__":
    asyncio.run(main())
