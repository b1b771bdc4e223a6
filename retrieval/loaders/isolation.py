"""Parsing in a child process with limits, so a file that crashes, hangs or bloats its
parser costs one document, never the worker.

PDF and DOCX parsing runs third-party code on strangers' bytes. A segfault in a C
extension, an endless loop or a decompression blow-up would otherwise take the
indexing worker, and every document queued behind it, down. Here each call goes to a
long-lived child (`python -m retrieval.loaders.isolation`) over its stdin and stdout;
the child runs under an address-space limit (`RLIMIT_AS`) and a CPU-time limit per
call (`RLIMIT_CPU`, then SIGXCPU), and the parent kills it past a wall-clock limit. A
child that dies is reported as a `LoaderError` saying what happened and replaced on
the next call. Pure Python, no Django: the limits are passed in.

Protocol: 8-byte big-endian length, then a pickle; requests are `(target, args, kwargs)`
with `target` a "module:function" name, replies `("ok", value)` or `("error", kind,
message, trace)`. Only our own process writes to the child, and only the child answers.

Besides uploads, inbound email is parsed here (`bots/tickets/services.py`), and a long PDF
is read in batches of pages, one call each, so the CPU limit applies per batch
(`load_bytes_isolated`, docs/decisions.md 38).
"""

from __future__ import annotations

import atexit
import math
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import IO, Any

from .base import LoadedDocument, LoaderError, ProgressCallback, call_here
from .files import PDF, load_bytes, media_type_for

_HEADER = struct.Struct(">Q")
LOAD_BYTES = "retrieval.loaders.files:load_bytes"


@dataclass(frozen=True)
class ParserLimits:
    memory_mb: int = 2048
    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    calls_per_process: int = 500  # then a fresh child, so slow leaks in parsers stay bounded


class ParserCrashError(LoaderError):
    """The child died or was killed; the message is meant for the uploader."""


class ChildError(RuntimeError):
    """The target raised something other than LoaderError or MemoryError in the child:
    `kind` is the exception's class name, `message` its text, `trace` its traceback."""

    def __init__(self, kind: str, message: str, trace: str) -> None:
        super().__init__(f"parser child raised {kind}: {trace}")
        self.kind = kind
        self.message = message


def load_bytes_isolated(
    data: bytes, *, limits: ParserLimits, on_progress: ProgressCallback | None = None, **options: Any
) -> LoadedDocument:
    """`load_bytes(data, **options)` in the parser child; LoaderError when the file
    cannot be read, including when it crashed or outran the child's limits.

    A PDF is read here, batch by batch of pages, each batch one call to the child (so one
    CPU allowance each) and reported to `on_progress(pages read, pages)`; only the pure
    assembly of the pages into a document runs in this process, never pypdf."""
    runner = _runner(limits)
    if media_type_for(options.get("filename", ""), options.get("content_type", "")) == PDF:
        return load_bytes(data, **options, on_progress=on_progress, call=runner.call)
    result = runner.call(LOAD_BYTES, data, **options)
    assert isinstance(result, LoadedDocument)
    return result


def run_isolated(target: str, *args: Any, limits: ParserLimits, **kwargs: Any) -> Any:
    """`target(*args, **kwargs)`, a "module:function" name, in the parser child under `limits`:
    LoaderError as from `load_bytes_isolated`, ChildError for anything else it raised."""
    return _runner(limits).call(target, *args, **kwargs)


_runners: dict[ParserLimits, IsolatedRunner] = {}
_runners_lock = threading.Lock()


def _runner(limits: ParserLimits) -> IsolatedRunner:
    with _runners_lock:
        runner = _runners.get(limits)
        if runner is None:
            runner = _runners[limits] = IsolatedRunner(limits)
        return runner


class IsolatedRunner:
    """One child process at a time, shared by this process's threads (calls queue on a lock)."""

    def __init__(self, limits: ParserLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._calls = 0
        atexit.register(self.stop)

    def call(self, target: str, *args: Any, **kwargs: Any) -> Any:
        """`target(*args, **kwargs)` in the child; its exceptions come back as LoaderError or RuntimeError."""
        with self._lock:
            child = self._fresh_child()
            self._calls += 1
            assert child.stdin is not None and child.stdout is not None
            try:
                _write(child.stdin, (target, args, kwargs))
                reply = _read(child.stdout, deadline=time.monotonic() + self.limits.wall_seconds)
            except TimeoutError:
                self._kill()
                # A busy server as much as the file: another try may finish in time.
                raise ParserCrashError(
                    f"Reading this file took longer than {self.limits.wall_seconds:g} seconds, so it was stopped. "
                    "The file may be damaged; try saving it again or splitting it.",
                    retryable=True,
                ) from None
            except (EOFError, BrokenPipeError, OSError):
                message, killed = self._death_message()
                raise ParserCrashError(message, retryable=killed) from None
        return _unpack(reply)

    def stop(self) -> None:
        with self._lock:
            self._kill()

    def _fresh_child(self) -> subprocess.Popen[bytes]:
        if self._child is not None and (self._child.poll() is not None or self._calls >= self.limits.calls_per_process):
            self._kill()
        if self._child is None:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "retrieval.loaders.isolation", str(self.limits.memory_mb),
                 str(self.limits.cpu_seconds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
            )  # fmt: skip
            self._calls = 0
        return self._child

    def _kill(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()

    def _death_message(self) -> tuple[str, bool]:
        """What to tell the uploader, and whether the child was killed from outside (the
        out-of-memory killer, an operator) rather than by this file."""
        child, self._child = self._child, None
        code = child.wait() if child is not None else None
        if child is not None:
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
        if code == -signal.SIGXCPU:
            return (
                f"Reading this file used more than {self.limits.cpu_seconds} seconds of processor time, so it was "
                "stopped. The file may be damaged; try saving it again or splitting it."
            ), False
        if code in (-signal.SIGKILL, -signal.SIGTERM):
            return "The document reader was stopped while reading this file (the server may be short of memory).", True
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        return f"The document reader crashed on this file ({how}). The file may be damaged; try saving it again.", False


def _unpack(reply: Any) -> Any:
    if reply[0] == "ok":
        return reply[1]
    _, kind, message, trace = reply
    if kind == "LoaderError":
        raise LoaderError(message)
    if kind == "MemoryError":
        raise LoaderError("Reading this file needs more memory than the server allows for one document.")
    raise ChildError(kind, message, trace)


def _write(stream: IO[bytes], value: Any) -> None:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read(stream: IO[bytes], deadline: float | None = None) -> Any:
    header = _read_exactly(stream, _HEADER.size, deadline)
    return pickle.loads(_read_exactly(stream, _HEADER.unpack(header)[0], deadline))  # noqa: S301 - our own child


def _read_exactly(stream: IO[bytes], size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    descriptor = stream.fileno()
    while remaining:
        if deadline is not None:
            ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError
        chunk = os.read(descriptor, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _serve(memory_mb: int, cpu_seconds: int) -> None:
    """The child: answer requests until stdin closes, each under a fresh CPU allowance."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024, resource.getrlimit(resource.RLIMIT_AS)[1]))
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a parser that prints must not corrupt the replies
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    while True:
        try:
            target, args, kwargs = _read(requests)
        except EOFError:
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        allowance = math.ceil(used.ru_utime + used.ru_stime) + cpu_seconds
        if hard_cpu != resource.RLIM_INFINITY:
            allowance = min(allowance, hard_cpu)
        resource.setrlimit(resource.RLIMIT_CPU, (allowance, hard_cpu))
        try:
            reply: tuple[Any, ...] = ("ok", call_here(target, *args, **kwargs))
        except MemoryError:
            reply = ("error", "MemoryError", "", "")
        except LoaderError as error:
            reply = ("error", "LoaderError", str(error), "")
        except Exception as error:  # noqa: BLE001 - sent to the parent, which logs it
            trace = "".join(traceback.format_exception(error))[-4000:]
            reply = ("error", type(error).__name__, str(error)[:4000], trace)
        _write(replies, reply)


__all__ = [
    "LOAD_BYTES",
    "ChildError",
    "IsolatedRunner",
    "ParserCrashError",
    "ParserLimits",
    "load_bytes_isolated",
    "run_isolated",
]

if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
