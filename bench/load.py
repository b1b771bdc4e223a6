#!/usr/bin/env python
"""Load benchmark: concurrent widget visitors through the whole stack on this machine.

One uvicorn process (the ASGI application), Celery workers in their own processes (the
`generation` queue, which answers, and `default`, with `runstack`'s pools), Redis (broker,
channel layer, event log, rate limits), a throwaway SQLite database shared by the
processes, the demo help centre ingested through `load_demo`, and a tiny GPT-Neo (random
weights, a tokenizer trained on the help centre) loaded by the workers through the
production loader, so every reply runs retrieval, prompt building, the decode loop with
the batching scheduler, the output screen, publishing and saving.

Each visitor opens a widget socket, says `hello`, asks a question from a list of
realistic ones, waits for the reply's `done`, thinks, asks again; now and then it closes
the socket and reconnects (resuming with its token and last event id, or as a new
visitor). Phases, in one run: warm-up (not counted), baseline (one visitor alone), load
(`--visitors` at once for `--duration` seconds), then a drain of the replies in flight.

Measured:
- completed replies (`done` with status done or blocked) per second and per minute;
- errors: `error` events, failed replies, socket failures, replies never done;
- first token: question sent → first `delta` of its reply, at the client;
- fan-out: event published → received by the client; every published event's id is
  `<ms>-<n>`, the Redis stream id its publisher got for it from the event log an
  instant before the channel layer's `group_send` (bots.chat.event_log), so latency is the
  client's wall clock at receipt minus those milliseconds (same machine, same clock;
  the id truncates to the millisecond, so figures read up to 1 ms high);
- resident memory of the ASGI process and every worker, sampled every few seconds;
  with `--soak` (600 s of load, samples every 10 s), its growth from the first minute
  after a one-minute warm-up to the last minute, against `--rss-bound-mb`.

Needs Redis at REDIS_URL (default redis://127.0.0.1:6379/0), on database `--redis-db`:
Celery's queues and the workers' heartbeat keys are not under NEO_CHANNEL_PREFIX, so on a
database shared with a test suite's workers each side would take the other's tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiny_model import build_tiny_model  # bench/tiny_model.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "How do I send a recurring invoice?",
    "What does the Team plan cost?",
    "How do I turn on two-factor authentication?",
    "Can I get a refund if I cancel my subscription?",
    "How do I cancel my subscription?",
    "How do I add a late fee to an overdue invoice?",
    "Which payment methods can my clients use to pay online?",
    "How long do payouts take to reach my bank account?",
    "How do I import my clients from a CSV file?",
    "Can I invoice in euros and dollars?",
    "How do I add VAT to my invoices?",
    "How do I turn an estimate into an invoice?",
    "I can't log in, my password reset email never arrived.",
    "How do I invite a team member and limit what they can see?",
    "How do I export all my invoices as PDF files?",
    "Does the mobile app work offline?",
    "How do I record a payment I received by bank transfer?",
    "How do I create an API key?",
    "How do I delete my account and all my data?",
    "Can I attach a receipt photo to an expense?",
    "How do automatic payment reminders work?",
    "How do I change the logo on my invoices?",
]
THINK_SECONDS = (1.0, 4.0)
RECONNECT_CHANCE = 0.15  # after a reply, close the socket and come back
NEW_VISITOR_CHANCE = 0.3  # of those reconnects, as a new visitor (no token)
REPLY_TIMEOUT_S = 120.0  # longer than a generation task may run (soft limit 120 s)
WARM_UP_QUESTIONS = 4
SOAK_SECONDS = 600
SOAK_WARM_UP_S = 60  # load time before the first memory window
ERROR_STATUSES = {"failed"}


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# Setup ----------------------------------------------------------------------------------


def redis_url_on(base: str, database: int) -> str:
    head, _, tail = base.rpartition("/")
    return f"{head}/{database}" if head.count("/") >= 2 and (tail.isdigit() or tail == "") else f"{base}/{database}"


def setup(var_dir: Path, redis_url: str, model_dir: Path, port: int, dtype: str) -> tuple[dict[str, str], Any]:
    unlimited = "1000000/minute"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "MEDIA_ROOT", "STATIC_ROOT", "NEO_VAR_DIR")
    }
    env.update(
        NEO_VAR_DIR=str(var_dir),
        REDIS_URL=redis_url,
        NEO_CHANNEL_PREFIX=f"load{uuid.uuid4().hex[:6]}",
        NEO_MODEL=str(model_dir),
        NEO_DEVICE="cpu",
        NEO_DTYPE=dtype,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        DJANGO_SETTINGS_MODULE="neo_support.settings",
        LOG_LEVEL="WARNING",
        NEO_RATE_CONNECTIONS_PER_IP=unlimited,
        NEO_RATE_MESSAGES_PER_IP=unlimited,
        NEO_RATE_MESSAGES_PER_VISITOR=unlimited,
        NEO_RATE_FRAMES_PER_SOCKET=unlimited,
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from neo_support.demo import DEMO_SLUG

    call_command("migrate", verbosity=0)
    call_command("load_demo", port=port, stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    from bots.models import Bot

    return env, Bot.objects.get(organization__slug=DEMO_SLUG)


def start_stack(env: dict[str, str], port: int, log_dir: Path) -> dict[str, subprocess.Popen[bytes]]:
    """The web server and one worker per queue the reply path touches, as `runstack` runs
    them (its pools); no beat, whose stall recovery (300 s) is longer than a reply waits here."""
    from neo_support.management.commands.runstack import WORKER_POOLS, WS_MAX_BYTES

    prefix = env["NEO_CHANNEL_PREFIX"]
    web = [sys.executable, "-m", "uvicorn", "neo_support.asgi:application", "--port", str(port),
           "--lifespan", "off", "--log-level", "warning", "--ws-max-size", str(WS_MAX_BYTES)]  # fmt: skip
    processes = {"asgi": spawn(web, env, log_dir / "asgi.log")}
    for queue in ("generation", "default"):
        worker = [sys.executable, "-m", "celery", "-A", "neo_support", "worker", "-Q", queue,
                  "-n", f"{queue}-{prefix}@%h", *WORKER_POOLS[queue], "--without-gossip", "--without-mingle",
                  "--loglevel", "WARNING"]  # fmt: skip
        processes[f"worker-{queue}"] = spawn(worker, env, log_dir / f"worker-{queue}.log")
    return processes


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


def log_problems(log_dir: Path) -> None:
    """Errors the processes logged, by exception line, most frequent first."""
    for log in sorted(log_dir.glob("*.log")):
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        errors = sum(" ERROR " in line or " CRITICAL " in line for line in lines)
        exceptions = Counter(
            line[:160] for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt|Exit)\b.*", line)
        )
        warnings = Counter(
            re.sub(r"\d+", "N", line.split(" WARNING ", 1)[1])[:120]
            for line in lines
            if " WARNING " in line and "presidio-analyzer" not in line and "celery.redirected" not in line
        )
        print(f"  {log.name}: {errors} ERROR lines, {sum(exceptions.values())} exception lines")
        for line, count in exceptions.most_common(5) + warnings.most_common(5):
            print(f"    {count:5d} × {line}")


def wait_until_ready(processes: dict[str, subprocess.Popen[bytes]], base_url: str, timeout: float = 180) -> None:
    """Until the server answers, the generation worker reports its model loaded, and the
    server's memory has settled (it builds its moderation recognisers when it starts)."""
    from neo_support.heartbeat import heartbeat_read
    from neo_support.redis_client import get_redis

    deadline = time.monotonic() + timeout

    def check_alive() -> None:
        for name, process in processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with status {process.returncode} while starting")

    while True:
        check_alive()
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{base_url}/healthz/live", timeout=2),
        ):
            break
        if time.monotonic() > deadline:
            raise SystemExit("the web server did not start")
        time.sleep(0.5)
    pid = processes["worker-generation"].pid
    while True:
        check_alive()
        beats = [beat for beat in heartbeat_read(get_redis()) if beat.pid == pid]
        state = beats[0].details.get("model", {}).get("state") if beats else None
        if state == "loaded":
            break
        if state == "unavailable" or time.monotonic() > deadline:
            raise SystemExit(f"the generation worker has no model: {beats[0].details if beats else 'no heartbeat'}")
        time.sleep(1)
    steady, last = 0, rss_mb(processes["asgi"].pid)
    while steady < 3 and time.monotonic() < deadline:
        time.sleep(1)
        now = rss_mb(processes["asgi"].pid)
        steady = steady + 1 if abs(now - last) < 1 else 0
        last = now


def stop_stack(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Memory ---------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children, in MB."""
    import psutil

    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


class MemorySampler(threading.Thread):
    def __init__(self, pids: dict[str, int], interval: float) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pids, self.interval = pids, interval
        self.samples: list[tuple[float, dict[str, float]]] = []  # (monotonic time, name → MB)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            sample = {}
            for name, pid in self.pids.items():
                with contextlib.suppress(Exception):
                    sample[name] = rss_mb(pid)
            self.samples.append((time.monotonic(), sample))
            self.halt.wait(self.interval)

    def between(self, start: float, end: float) -> list[dict[str, float]]:
        return [sample for at, sample in self.samples if start <= at < end]


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    import psutil

    seconds = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            seconds[name] = times.user + times.system
    return seconds


# Visitors -------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    stop_at: float = 0.0  # monotonic: no new question after this
    started: float = 0.0
    questions: int = 0
    completed: list[float] = field(default_factory=list)  # monotonic time of each `done` (done or blocked)
    statuses: Counter[str] = field(default_factory=Counter)
    first_token_s: list[float] = field(default_factory=list)
    ack_s: list[float] = field(default_factory=list)
    reply_s: list[float] = field(default_factory=list)  # question sent → its `done`
    fanout_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # `error` events by code
    refused: int = 0  # questions answered with an error and no reply
    stray_errors: int = 0  # error events that neither refused a question nor failed a reply
    in_flight: int = 0
    never_done: list[int] = field(default_factory=list)  # reply ids (0: not even acknowledged)
    socket_failures: Counter[str] = field(default_factory=Counter)
    no_delta: int = 0
    resets: int = 0
    reconnects: int = 0
    resumed: int = 0
    reply_ids: list[int] = field(default_factory=list)

    def failures(self) -> int:
        """Questions without a completed reply (failed, never done, refused, cut by a socket
        failure), plus failed connections and error events that failed nothing else."""
        connect_failures = sum(n for what, n in self.socket_failures.items() if what.startswith("connect"))
        return self.questions - self.in_flight - len(self.completed) + connect_failures + self.stray_errors


async def connect(url: str, token: str | None, last_event_id: str | None) -> tuple[Any, dict[str, Any]]:
    import websockets

    origin = "http://" + url.split("//", 1)[1].split("/", 1)[0]  # the server's own pages are always allowed
    socket = await websockets.connect(url, origin=origin, max_size=2**20, open_timeout=30)
    await socket.send(json.dumps({"type": "hello", "v": 1, "visitor_token": token, "last_event_id": last_event_id}))
    while True:
        event = json.loads(await asyncio.wait_for(socket.recv(), 30))
        if event["type"] == "welcome":
            return socket, event
        if event["type"] == "error" and event.get("code") not in ("token_invalid", "token_expired"):
            await socket.close()
            raise ConnectionError(f"refused: {event.get('code')}")


@dataclass
class Visitor:
    socket: Any = None
    token: str | None = None
    last_event_id: str | None = None


async def ask(visitor: Visitor, question: str, phase: Phase) -> bool:
    """Send one question and follow its reply to `done`. False when the socket must be
    replaced (it failed, or the reply never finished)."""
    phase.in_flight += 1
    try:
        return await _follow(visitor, question, phase)
    finally:
        phase.in_flight -= 1


async def _follow(visitor: Visitor, question: str, phase: Phase) -> bool:
    client_id = uuid.uuid4().hex
    sent = time.perf_counter()
    await visitor.socket.send(json.dumps({"type": "message", "client_id": client_id, "text": question}))
    phase.questions += 1
    reply_id: int | None = None
    first_delta: dict[int, float] = {}
    done: dict[int, dict[str, Any]] = {}
    deadline = sent + REPLY_TIMEOUT_S
    while True:
        try:
            raw = await asyncio.wait_for(visitor.socket.recv(), max(0.1, deadline - time.perf_counter()))
        except TimeoutError:
            phase.never_done.append(reply_id or 0)
            visitor.token = visitor.last_event_id = None  # its conversation stays busy: start afresh
            return False
        now, wall = time.perf_counter(), time.time()
        event = json.loads(raw)
        kind = event.get("type")
        if "id" in event:
            visitor.last_event_id = event["id"]
            if kind in ("delta", "done"):
                phase.fanout_s.append(wall - int(str(event["id"]).split("-")[0]) / 1000)
        if kind == "ack" and event.get("client_id") == client_id:
            reply_id = event.get("reply_id")
            visitor.token = event.get("visitor_token") or visitor.token
            phase.ack_s.append(now - sent)
            if reply_id is None:  # a person holds the conversation: nothing to wait for
                phase.refused += 1
                return True
        elif kind == "delta":
            first_delta.setdefault(event["message_id"], now)
        elif kind == "reset":
            phase.resets += 1
            first_delta.pop(event["message_id"], None)
        elif kind == "done":
            done[event["message_id"]] = event
        elif kind == "error":
            phase.errors[event.get("code", "?")] += 1
            details = event.get("details") or {}
            if reply_id is None and (details.get("client_id") == client_id or event.get("code") == "internal_error"):
                phase.refused += 1  # the question was not taken
                return True
            if event.get("code") not in ("reply_failed", "reply_interrupted"):  # those end in a failed `done`
                phase.stray_errors += 1
        if reply_id is not None and reply_id in done:
            status = str(done[reply_id].get("status"))
            phase.statuses[status] += 1
            phase.reply_ids.append(reply_id)
            if status != "failed":
                phase.completed.append(time.monotonic())
                phase.reply_s.append(now - sent)
            if reply_id in first_delta:
                phase.first_token_s.append(first_delta[reply_id] - sent)
            else:
                phase.no_delta += 1
            return True


async def visitor_loop(url: str, phase: Phase, rng: random.Random, questions: int | None = None) -> None:
    """One visitor until the phase ends (or after `questions` questions)."""
    import websockets

    visitor, asked = Visitor(), 0
    while time.monotonic() < phase.stop_at and (questions is None or asked < questions):
        if visitor.socket is None:
            try:
                visitor.socket, welcome = await connect(url, visitor.token, visitor.last_event_id)
            except (OSError, TimeoutError, ConnectionError, websockets.WebSocketException) as error:
                phase.socket_failures[f"connect: {type(error).__name__}: {error}"[:120]] += 1
                await asyncio.sleep(1)
                continue
            visitor.token = welcome["visitor_token"]
            phase.resumed += bool(welcome.get("resumed"))
        try:
            keep = await ask(visitor, rng.choice(QUESTIONS), phase)
        except (OSError, websockets.WebSocketException) as error:
            phase.socket_failures[f"during a reply: {type(error).__name__}: {error}"[:120]] += 1
            keep = False
        asked += 1
        if not keep or rng.random() < RECONNECT_CHANCE:
            with contextlib.suppress(Exception):
                await visitor.socket.close()
            visitor.socket = None
            if keep:
                phase.reconnects += 1
                if rng.random() < NEW_VISITOR_CHANCE:
                    visitor.token = visitor.last_event_id = None
        if (asked < questions) if questions is not None else time.monotonic() < phase.stop_at:
            await asyncio.sleep(rng.uniform(*THINK_SECONDS))
    if visitor.socket is not None:
        with contextlib.suppress(Exception):
            await visitor.socket.close()


async def run_phase(
    url: str, phase: Phase, visitors: int, seconds: float | None, questions: int | None, seed: int
) -> None:
    from tqdm import tqdm

    phase.started = time.monotonic()
    phase.stop_at = phase.started + (seconds if seconds is not None else 10**9)
    tasks = [
        asyncio.ensure_future(visitor_loop(url, phase, random.Random(seed * 1000 + n), questions))
        for n in range(visitors)
    ]
    interactive = sys.stderr.isatty()
    total = int(seconds) if seconds is not None else visitors * (questions or 0)
    with tqdm(total=total, desc=phase.name, unit="s" if seconds else "q", mininterval=1 if interactive else 15) as bar:
        while not all(task.done() for task in tasks):
            await asyncio.sleep(1)
            position = min(total, int(time.monotonic() - phase.started) if seconds else len(phase.reply_ids))
            bar.update(position - bar.n)
            bar.set_postfix(
                done=len(phase.completed),
                errors=phase.failures(),
                first_p50_ms=f"{percentile(phase.first_token_s, 0.5) * 1000:.0f}",
                refresh=False,
            )
    for task in tasks:
        task.result()  # a bug in the bench itself surfaces here


# Report ---------------------------------------------------------------------------------


def server_timings(reply_ids: list[int]) -> dict[str, Any]:
    """What the workers recorded for these replies (bots.models.Message.timings)."""
    from bots.models import Message

    rows = list(Message.objects.filter(pk__in=reply_ids).values_list("timings", "completion_tokens"))
    timings = [row[0] for row in rows if row[0]]

    def values(key: str) -> list[float]:
        return [float(t[key]) for t in timings if isinstance(t.get(key), int | float)]

    return {
        "modes": Counter(str(t.get("mode")) for t in timings),
        "queue_wait_ms": values("queue_wait_ms"),
        "first_token_ms": values("first_token_ms"),
        "first_text_ms": values("first_text_ms"),
        "total_ms": values("total_ms"),
        "tokens": [row[1] for row in rows if row[1]],
    }


def server_timings_print(label: str, reply_ids: list[int]) -> Counter[str]:
    server = server_timings(reply_ids)

    def both(key: str) -> str:
        return f"{percentile(server[key], 0.5):.0f}/{percentile(server[key], 0.99):.0f}"

    print(
        f"  worker timings, {label} (p50/p99 ms): queue wait {both('queue_wait_ms')}, first token produced "
        f"{both('first_token_ms')}, first text published {both('first_text_ms')}, whole reply {both('total_ms')}; "
        f"modes {dict(server['modes'])}; tokens per reply {statistics.mean(server['tokens'] or [0]):.0f}"
    )
    modes: Counter[str] = server["modes"]
    return modes


def unfinished_replies() -> list[tuple[int, str]]:
    from bots.models import Message, MessageStatus, Role

    return list(
        Message.objects.filter(role=Role.BOT, status__in=[MessageStatus.PENDING, MessageStatus.STREAMING]).values_list(
            "pk", "status"
        )
    )


def spark(values: list[float]) -> str:
    bars = "▁▂▃▄▅▆▇█"
    low, high = min(values), max(values)
    return "".join(bars[int((v - low) / (high - low) * 7) if high > low else 0] for v in values)


def memory_report(
    sampler: MemorySampler, start: float, window_end: float, end: float, names: list[str], soak: bool, bound_mb: float
) -> dict[str, float]:
    """A table of RSS over the load phase and its drain; in soak mode, growth from the
    first minute after the warm-up minute to the last minute of load (`window_end`), as
    medians of the samples in each window."""
    samples = [(at - start, sample) for at, sample in sampler.samples if start <= at <= end]
    step = 60 if end - start > 300 else 15
    print(f"\nRSS over the load phase (MB; a row every {step} s):")
    print("   t/s  " + "".join(f"{name:>19}" for name in names))
    next_row = 0.0
    for offset, sample in samples:
        if offset >= next_row:
            print(f"{offset:6.0f}  " + "".join(f"{sample.get(name, float('nan')):19.1f}" for name in names))
            next_row += step
    for name in names:
        series = [sample[name] for _, sample in samples if name in sample]
        if series:
            print(f"  {name:<18} {spark(series[:: max(1, len(series) // 60)])}  {min(series):.0f}–{max(series):.0f} MB")
    growth: dict[str, float] = {}
    if soak:
        first = sampler.between(start + SOAK_WARM_UP_S, start + SOAK_WARM_UP_S + 60)
        last = sampler.between(window_end - 60, window_end + 1)
        print(
            f"\nSoak: RSS growth from minute {SOAK_WARM_UP_S // 60 + 1} to the last minute (medians), "
            f"bound {bound_mb:.0f} MB per process:"
        )
        for name in names:
            a = [s[name] for s in first if name in s]
            b = [s[name] for s in last if name in s]
            if a and b:
                growth[name] = statistics.median(b) - statistics.median(a)
                verdict = "ok" if growth[name] <= bound_mb else "OVER THE BOUND"
                print(
                    f"  {name:<18} {statistics.median(a):8.1f} → {statistics.median(b):8.1f} MB  "
                    f"{growth[name]:+7.1f} MB  {verdict}"
                )
    return growth


def describe(phase: Phase, seconds: float) -> None:
    rate = len([t for t in phase.completed if t <= phase.stop_at]) / seconds

    def both(values: list[float], digits: int = 0) -> str:
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        return f"p50 {p50:.{digits}f} ms, p99 {p99:.{digits}f} ms"

    print(
        f"{phase.name}: {phase.questions} questions, {len(phase.completed)} replies completed "
        f"({dict(phase.statuses)}), {rate:.2f}/s = {rate * 60:.0f}/min; first delta {both(phase.first_token_s)}; "
        f"done {both(phase.reply_s)}; ack p50 {percentile(phase.ack_s, 0.5) * 1000:.0f} ms; "
        f"fan-out {both(phase.fanout_s, 1)} ({len(phase.fanout_s)} events)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=20, help="concurrent visitors in the load phase (20)")
    parser.add_argument("--duration", type=float, default=120, help="seconds of load (120; 600 with --soak)")
    parser.add_argument("--soak", action="store_true", help="600 s of load, RSS every 10 s, growth against the bound")
    parser.add_argument("--baseline-questions", type=int, default=15, help="questions of the lone visitor (15)")
    parser.add_argument("--rss-interval", type=float, default=None, help="seconds between RSS samples (5; soak 10)")
    parser.add_argument("--rss-bound-mb", type=float, default=50, help="soak: allowed growth per process (50 MB)")
    parser.add_argument("--max-error-rate", type=float, default=0.01, help="exit 1 above this share (0.01)")
    parser.add_argument("--redis-db", type=int, default=11, help="Redis database for the whole stack (11)")
    parser.add_argument("--dtype", default="auto", help="the workers' NEO_DTYPE (auto, as in production)")
    parser.add_argument("--log-dir", type=Path, help="keep the processes' logs here (default: thrown away)")
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    duration = float(SOAK_SECONDS) if arguments.soak else arguments.duration
    interval = arguments.rss_interval or (10.0 if arguments.soak else 5.0)
    redis_url = redis_url_on(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), arguments.redis_db)
    started_at = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="neo-loadbench-") as temporary:
        var_dir, model_dir = Path(temporary), Path(temporary) / "tiny-gpt-neo"
        build_tiny_model(model_dir)
        port = 19000 + os.getpid() % 1000
        log_dir = arguments.log_dir or var_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        env, bot = setup(var_dir, redis_url, model_dir, port, arguments.dtype)
        processes = start_stack(env, port, log_dir)
        names = list(processes)
        pids = {name: process.pid for name, process in processes.items()}
        sampler = MemorySampler(pids, interval)
        url = f"ws://127.0.0.1:{port}/ws/chat/?key={bot.public_key}"
        warm_up, baseline = Phase("warm-up"), Phase("baseline (1 visitor)")
        load = Phase(f"load ({arguments.visitors} visitors)")
        try:
            wait_until_ready(processes, f"http://127.0.0.1:{port}")
            ready = ", ".join(f"{name} pid {pid}" for name, pid in pids.items())
            print(f"stack ready after {time.monotonic() - started_at:.0f} s: {ready}")
            sampler.start()
            asyncio.run(run_phase(url, warm_up, 1, None, WARM_UP_QUESTIONS, arguments.seed))
            asyncio.run(run_phase(url, baseline, 1, None, arguments.baseline_questions, arguments.seed + 1))
            baseline_seconds = time.monotonic() - baseline.started
            cpu_before = cpu_seconds(pids | {"clients": os.getpid()})
            asyncio.run(run_phase(url, load, arguments.visitors, duration, None, arguments.seed + 2))
            load_end = time.monotonic()
            cpu_after = cpu_seconds(pids | {"clients": os.getpid()})
            sampler.halt.set()
            sampler.join()
            unfinished = unfinished_replies()
        finally:
            sampler.halt.set()
            stop_stack(processes)
            with contextlib.suppress(Exception):
                from neo_support.redis_client import get_redis

                client = get_redis()
                for key in client.scan_iter(match=f"{env['NEO_CHANNEL_PREFIX']}:*", count=500):
                    client.delete(key)

        print()
        describe(baseline, baseline_seconds)
        describe(load, duration)
        drained = load_end - load.stop_at
        print(f"  drain after the load: {drained:.1f} s; reconnects {load.reconnects} (resumed {load.resumed})")
        server_timings_print("baseline", baseline.reply_ids)
        modes = server_timings_print("load", load.reply_ids)
        load_seconds = load_end - load.started
        print(
            "  CPU over the load phase (share of one core): "
            + ", ".join(f"{name} {(cpu_after[name] - cpu_before[name]) / load_seconds:.0%}" for name in cpu_after)
        )
        failures = load.failures()
        error_rate = failures / max(1, load.questions)
        print(
            f"  errors: {failures} for {load.questions} questions ({error_rate:.2%}): error events "
            f"{dict(load.errors)} ({load.stray_errors} stray), failed replies {load.statuses['failed']}, "
            f"refused {load.refused}, "
            f"never done {len(load.never_done)} {load.never_done[:10]}, socket failures {dict(load.socket_failures)}; "
            f"replies without a delta {load.no_delta}, resets {load.resets}; "
            f"left pending or streaming in the database {unfinished[:10]}"
        )
        print("  logs:")
        log_problems(log_dir)
        growth = memory_report(
            sampler, load.started, load.stop_at, load_end, names, arguments.soak, arguments.rss_bound_mb
        )
        last = sampler.samples[-1][1] if sampler.samples else {}

        rate = len([t for t in load.completed if t <= load.stop_at]) / duration
        first_alone = percentile(baseline.first_token_s, 0.5)
        first_loaded = percentile(load.first_token_s, 0.5)
        print(f"\ntotal {time.monotonic() - started_at:.0f} s")
        print(f"FIGURE replies_per_second={rate:.2f} /s")
        print(f"FIGURE replies_per_minute={rate * 60:.0f} /min")
        print(f"FIGURE replies_per_second_alone={len(baseline.completed) / baseline_seconds:.2f} /s")
        print(f"FIGURE error_rate={error_rate * 100:.2f} %")
        print(f"FIGURE first_token_p50_ms={first_loaded * 1000:.0f} ms")
        print(f"FIGURE first_token_p99_ms={percentile(load.first_token_s, 0.99) * 1000:.0f} ms")
        print(f"FIGURE first_token_p50_alone_ms={first_alone * 1000:.0f} ms")
        print(f"FIGURE first_token_p50_load_over_alone={first_loaded / first_alone:.2f} x")
        print(f"FIGURE reply_done_p50_ms={percentile(load.reply_s, 0.5) * 1000:.0f} ms")
        print(f"FIGURE fanout_p50_ms={percentile(load.fanout_s, 0.5) * 1000:.1f} ms")
        print(f"FIGURE fanout_p99_ms={percentile(load.fanout_s, 0.99) * 1000:.1f} ms")
        for name in names:
            if name in last:
                print(f"FIGURE rss_{name.replace('-', '_')}_mb={last[name]:.0f} MB")
        if arguments.soak:
            worst = max(growth.values()) if growth else float("nan")
            print(f"FIGURE soak_rss_growth_mb={worst:.1f} MB")

        problems = []
        if error_rate > arguments.max_error_rate:
            problems.append(f"error rate {error_rate:.2%} over {arguments.max_error_rate:.2%}")
        if arguments.soak and (not growth or max(growth.values()) > arguments.rss_bound_mb):
            problems.append(f"RSS grew past {arguments.rss_bound_mb:.0f} MB: {growth}")
        if "generative" not in modes:
            problems.append("no reply was generated by the model")
        if problems:
            raise SystemExit("FAILED: " + "; ".join(problems))


if __name__ == "__main__":
    main()
