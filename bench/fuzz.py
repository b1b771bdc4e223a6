#!/usr/bin/env python
"""Fuzzing, the long run: the CI suite's fuzz tests with many more examples.

- chat: hypothesis-generated websocket frames (garbage text, arbitrary JSON, frames of
  every type with wrong fields, well-formed messages with any text) against the chat
  consumer through the real ASGI application, replies written by the in-process worker
  (`tests/e2e/test_fuzz_chat.py`);
- api: schemathesis against our OpenAPI schema, every operation, valid and invalid
  requests with a real API key (`tests/e2e/test_api_schemathesis.py`);
- email: generated and mutated MIME messages, and arbitrary bytes, through the email
  parser (`tests/e2e/test_fuzz_email.py`, 8 times the examples: the parser is fast);
- uploads: real PDF, DOCX, HTML, Markdown and CSV files mutated (cut, flipped, spliced,
  repeated) and raw bytes under every extension, through the parser child ingestion uses
  (`tests/e2e/test_fuzz_uploads.py`, 4 times the examples).

Both run on a throwaway SQLite database. `--examples N` (default 300) sets the examples
per test (per operation for the API). Any 5xx, unhandled exception, undocumented close
code, answer off the schema or reply left pending fails the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = {
    "chat": "tests/e2e/test_fuzz_chat.py",
    "api": "tests/e2e/test_api_schemathesis.py",
    "email": "tests/e2e/test_fuzz_email.py",
    "uploads": "tests/e2e/test_fuzz_uploads.py",
}


def run_suite(path: str, examples: int, var_dir: Path) -> tuple[bool, float, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "NEO_VAR_DIR")}
    env.update(NEO_FUZZ_EXAMPLES=str(examples), NEO_VAR_DIR=str(var_dir), HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    return result.returncode == 0, time.perf_counter() - started, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=300, help="examples per test (default 300)")
    parser.add_argument("--suites", default="chat,api,email,uploads", help="comma-separated: chat, api, email, uploads")
    arguments = parser.parse_args()
    chosen = [name.strip() for name in arguments.suites.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SUITES]
    if unknown or arguments.examples < 1:
        parser.error(f"unknown suite {unknown[0]!r}" if unknown else "--examples must be at least 1")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="neo-fuzz-") as tmp:
        for name in chosen:
            print(f"{name}: {arguments.examples} examples…", flush=True)
            passed, seconds, summary = run_suite(SUITES[name], arguments.examples, Path(tmp) / name)
            failures += not passed
            print(f"  {'passed' if passed else 'FAILED'} in {seconds:.0f} s: {summary}", flush=True)
            print(f"FIGURE fuzz_{name}_examples={arguments.examples} examples")
    print(f"FIGURE fuzz_failures={failures} suites")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
