"""bench/gpu.py, run for real on the CPU with tiny shapes, as it runs on a GPU machine:
its own process, without Django's settings (the GPU machine has none of our
requirements), nothing downloaded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TINY_SHAPES = ("neo125m_tiny", "neo1.3b_tiny", "neo2.7b_tiny", "qwen0.5b_tiny")


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["HF_HUB_OFFLINE"] = "1"
    command = [sys.executable, "bench/gpu.py", "--device", "cpu", "--shapes", "tiny", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_it_prints_figures_for_every_tiny_shape() -> None:
    result = run_bench("--streams", "1,4", "--new-tokens", "8")

    assert result.returncode == 0, result.stderr
    figures = dict(re.findall(r"^FIGURE (\S+)=(\S+) ", result.stdout, flags=re.MULTILINE))
    for shape in TINY_SHAPES:
        for name in ("tokens_per_s_1", "tokens_per_s_4", "scheduler_vs_generate_4", "streams4_speedup"):
            assert float(figures[f"gpu_{shape}_{name}"]) > 0
        assert f"gpu_{shape}_first_token_p50_ms_4" in figures
        assert f"gpu_{shape}_peak_memory_mb" in figures
    assert result.stdout.startswith("device   CPU (cpu), fp32; torch ")


def test_it_starts_no_measurement_once_its_budget_is_spent() -> None:
    result = run_bench("--budget-s", "0")

    assert result.returncode == 0, result.stderr
    assert "budget   0 s spent" in result.stdout
    assert "FIGURE" not in result.stdout
