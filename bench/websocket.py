#!/usr/bin/env python
"""Websocket benchmark: one ASGI process (uvicorn), Redis, clients on this machine.

- idle sockets: N widget connections that said `hello`; resident memory of the ASGI
  process before and after, per socket;
- fan-out: 50 of them in their own conversations while deltas are published to all 50
  at once through `bots.chat.publishing.publish` (event log + channel layer), as 50
  streaming replies would; latency from publish to the client's receive, against the
  same run's raw channels-redis `group_send` → `receive` with no server in between;
- end to end: one visitor asks with a Celery worker running (extractive answers, so
  the figure is the pipeline's, not the model's); time from sending the question to
  the first delta, minus the time the worker published its first (screened) text
  (`timings.first_text_ms`).

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0); uses a throwaway SQLite
database in a temporary folder shared by the processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STREAMS = 50
DELTAS_PER_STREAM = 40
DELTA_INTERVAL_S = 0.05  # 20 tokens/s per stream, as a CPU worker streams


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def setup(var_dir: Path, redis_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "NEO_MODEL", "MEDIA_ROOT", "NEO_VAR_DIR")
    }
    env.update(
        NEO_VAR_DIR=str(var_dir),
        REDIS_URL=redis_url,
        NEO_CHANNEL_PREFIX=f"bench{uuid.uuid4().hex[:6]}",
        NEO_MODEL=str(var_dir / "no-model"),
        HF_HUB_OFFLINE="1",
        DJANGO_SETTINGS_MODULE="neo_support.settings",
        NEO_RATE_CONNECTIONS_PER_IP="100000/minute",
        NEO_RATE_MESSAGES_PER_IP="100000/minute",
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def make_bot():  # type: ignore[no-untyped-def]
    from bots.services import bot_create
    from neo_support.models import Organization
    from retrieval.services.documents import document_create_from_text
    from retrieval.services.ingestion import documents_ingest_all
    from retrieval.services.knowledge_bases import knowledge_base_create

    organization = Organization.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    knowledge_base = knowledge_base_create(organization=organization, name="Help")
    text = "# Billing\n\n## Refunds\n\nRefunds reach your card within five working days. Gift cards are not refunded."
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=text, queue=False)]
    )
    return bot_create(
        organization=organization,
        name="Bench bot",
        knowledge_bases=[knowledge_base],
        answer_threshold=0.0,
        handoff_threshold=0.0,
    )


def rss_kb(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss / 1024)


def wait_until_settled(pid: int, timeout: float = 90) -> None:
    """Until the server's memory stops moving: it builds its moderation recognisers in
    the background when it starts, which must not be counted as the sockets' memory."""
    deadline, steady, last = time.monotonic() + timeout, 0, rss_kb(pid)
    while steady < 3 and time.monotonic() < deadline:
        time.sleep(1)
        now = rss_kb(pid)
        steady = steady + 1 if abs(now - last) < 1024 else 0
        last = now


async def connect(url: str, token: str | None = None):  # type: ignore[no-untyped-def]
    import websockets

    origin = "http://" + url.split("//", 1)[1].split("/", 1)[0]  # the server's own pages are always allowed
    socket = await websockets.connect(url, origin=origin, max_size=2**20, open_timeout=60)
    await socket.send(json.dumps({"type": "hello", "v": 1, "visitor_token": token}))
    while True:
        event = json.loads(await socket.recv())
        if event["type"] == "welcome":
            return socket


async def idle_and_fanout(url: str, server_pid: int, bot, sockets_wanted: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from asgiref.sync import sync_to_async

    from bots.chat.services import conversation_start
    from bots.chat.visitors import Visitor, visitor_token_issue

    wait_until_settled(server_pid)
    before = rss_kb(server_pid)
    idle = []
    for start in range(0, sockets_wanted - STREAMS, 50):
        batch = min(50, sockets_wanted - STREAMS - start)
        idle += await asyncio.gather(*(connect(url) for _ in range(batch)))
    conversations = []
    for n in range(STREAMS):
        conversation = await sync_to_async(conversation_start)(bot=bot, visitor_id=f"fan{n}")
        conversations.append(conversation.pk)
    tokens = [visitor_token_issue(Visitor(bot.pk, f"fan{n}", pk)) for n, pk in enumerate(conversations)]
    streaming = await asyncio.gather(*(connect(url, token) for token in tokens))
    await asyncio.sleep(2)
    after = rss_kb(server_pid)
    per_socket = (after - before) / sockets_wanted
    print(
        f"idle     {sockets_wanted} sockets: ASGI RSS {before / 1024:.0f} → {after / 1024:.0f} MB, "
        f"{per_socket:.1f} kB each"
    )

    latencies: list[float] = []

    received = [0] * len(streaming)

    async def read(index: int, socket) -> None:  # type: ignore[no-untyped-def]
        while received[index] < DELTAS_PER_STREAM:
            event = json.loads(await socket.recv())
            if event["type"] != "delta":
                continue
            received[index] += 1
            latencies.append(time.time() - float(event["text"]))

    readers = [asyncio.ensure_future(read(n, socket)) for n, socket in enumerate(streaming)]

    # The deltas come from another process, as from a generation worker.
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--publish", ",".join(map(str, conversations)), cwd=ROOT, env=os.environ.copy()
    )
    await publisher.wait()
    try:
        await asyncio.wait_for(asyncio.gather(*readers), 60)
    except TimeoutError:
        short = [count for count in received if count < DELTAS_PER_STREAM]
        raise SystemExit(f"{len(short)} streams missed deltas: received {sorted(short)}") from None
    for socket in idle + streaming:
        await socket.close()
    return {
        "idle_kb": per_socket,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "count": len(latencies),
    }


async def raw_fanout() -> dict[str, float]:
    """The same 50 × 40 deltas through channels-redis alone: group_send → receive."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channels = []
    for n in range(STREAMS):
        channel = await layer.new_channel()
        await layer.group_add(f"rawbench.{n}", channel)
        channels.append(channel)
    latencies: list[float] = []

    async def read(channel: str) -> None:
        for _ in range(DELTAS_PER_STREAM):
            message = await layer.receive(channel)
            latencies.append(time.time() - message["sent"])

    readers = [asyncio.ensure_future(read(channel)) for channel in channels]
    for _ in range(DELTAS_PER_STREAM):
        started = time.monotonic()
        for n in range(STREAMS):
            await layer.group_send(f"rawbench.{n}", {"type": "x", "sent": time.time()})
        await asyncio.sleep(max(0.0, DELTA_INTERVAL_S - (time.monotonic() - started)))
    await asyncio.wait_for(asyncio.gather(*readers), 120)
    return {"p50": percentile(latencies, 0.5) * 1000, "p99": percentile(latencies, 0.99) * 1000}


async def end_to_end(url: str, bot, questions: int) -> list[float]:  # type: ignore[no-untyped-def]
    from asgiref.sync import sync_to_async

    from bots.models import Message

    overheads = []
    for n in range(questions):
        socket = await connect(url)
        sent = time.perf_counter()
        await socket.send(json.dumps({"type": "message", "client_id": f"q{n}", "text": "How long do refunds take?"}))
        reply_id = None
        while True:
            event = json.loads(await socket.recv())
            if event["type"] == "ack":
                reply_id = event["reply_id"]
                acked = time.perf_counter() - sent
            if event["type"] == "delta":
                first = time.perf_counter() - sent
            if event["type"] == "done":
                break
        await socket.close()
        reply = await sync_to_async(Message.objects.get)(pk=reply_id)
        overheads.append(first * 1000 - reply.timings["first_text_ms"])
        if os.environ.get("BENCH_VERBOSE"):
            print(f"ack {acked * 1000:.1f} first {first * 1000:.1f} worker {reply.timings}")
    return overheads


def publish_deltas(conversations: list[int]) -> None:
    """The worker's side of the fan-out run: deltas stamped with the time they were published."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from bots.chat.publishing import publish

    # A worker is long-running: its connections are open before the measured deltas.
    for pk in conversations:
        publish(pk, {"type": "status", "status": "bot_typing"})
    for seq in range(DELTAS_PER_STREAM):
        started = time.monotonic()
        for pk in conversations:
            publish(pk, {"type": "delta", "message_id": 1, "seq": seq, "text": repr(time.time())})
        time.sleep(max(0.0, DELTA_INTERVAL_S - (time.monotonic() - started)))
    publish(conversations[0], {"type": "status", "status": "bot_idle"})  # waits until all were sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--publish", help=argparse.SUPPRESS)  # internal: the publishing process
    arguments = parser.parse_args()
    if arguments.publish:
        publish_deltas([int(pk) for pk in arguments.publish.split(",")])
        return
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    with tempfile.TemporaryDirectory(prefix="neo-wsbench-") as temporary:
        env = setup(Path(temporary), redis_url)
        bot = make_bot()
        port = 18000 + os.getpid() % 1000
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "neo_support.asgi:application", "--port", str(port),
             "--log-level", "warning", "--ws-max-size", "1048576", "--backlog", "2048"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        worker = None
        try:
            time.sleep(3)
            url = f"ws://127.0.0.1:{port}/ws/chat/?key={bot.public_key}"
            ours = asyncio.run(idle_and_fanout(url, server.pid, bot, arguments.sockets))
            raw = asyncio.run(raw_fanout())
            print(
                f"fan-out  {STREAMS} streams × {DELTAS_PER_STREAM} deltas at {1 / DELTA_INTERVAL_S:.0f}/s each with "
                f"{arguments.sockets} sockets open: publish → client p50 {ours['p50']:.1f} ms, "
                f"p99 {ours['p99']:.1f} ms; "
                f"raw group_send → receive p50 {raw['p50']:.1f} ms, p99 {raw['p99']:.1f} ms"
            )
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "neo_support", "worker", "-Q", "generation,indexing,default",
                 "--pool", "threads", "--concurrency", "2", "--without-gossip", "--without-mingle",
                 "--loglevel", "WARNING"],
                cwd=ROOT, env=env,
            )  # fmt: skip
            time.sleep(8)
            overheads = asyncio.run(end_to_end(url, bot, arguments.questions))
            p50 = statistics.median(overheads)
            print(
                f"e2e      first delta seen by the visitor minus the worker's first token: p50 {p50:.1f} ms, "
                f"max {max(overheads):.1f} ms over {len(overheads)} questions"
            )
        finally:
            for process in (server, worker):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=20)
        print(f"FIGURE fanout_p50_ms={ours['p50']:.1f} ms")
        print(f"FIGURE fanout_p99_ms={ours['p99']:.1f} ms")
        print(f"FIGURE fanout_p50_over_raw={ours['p50'] / raw['p50']:.2f} x")
        print(f"FIGURE e2e_first_token_overhead_ms={p50:.1f} ms")
        print(f"FIGURE idle_socket_kb={ours['idle_kb']:.1f} kB")


if __name__ == "__main__":
    main()
