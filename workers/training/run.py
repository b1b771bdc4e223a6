"""One tuning run as plain data: train the adapter on the examples, then score base
against tuned on the held-back ones and decide ready (deployable) or rejected.

Progress, liveness and cancel are callbacks; the caller (bots.tuning.runs) stores them
on the model version, so this module never touches the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.generation.model import ModelUnavailable
from workers.moderation.pipeline import Policy
from workers.training.dataset import Example
from workers.training.evaluation import regressions, score
from workers.training.finetune import (
    Progress,
    TrainingCancelled,
    TrainingConfig,
    load_base,
    load_tuned,
    train_adapter,
)

logger = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    status: str  # "ready", "rejected", "failed" or "cancelled"
    error: str = ""
    compute: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def example_counts(examples: Sequence[Example]) -> dict[str, int]:
    """How many examples of each split and source (`train_agent`, `validation_rated`, ...)."""
    counts: dict[str, int] = {}
    for example in examples:
        key = f"{example.split}_{example.source}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def tune_and_evaluate(
    *,
    examples: Sequence[Example],
    base_model: str,
    config: TrainingConfig,
    output: Path,
    device: str,
    moderation_policy: dict[str, Any],
    on_progress: Callable[[Progress], None],
    cancelled: Callable[[], bool],
    on_trained: Callable[[dict[str, Any]], None],
    on_alive: Callable[[], None],
) -> RunOutcome:
    """Train (resuming from a checkpoint in `output`), then evaluate. `on_trained(compute)`
    is called when training ends and evaluation starts; `on_alive()` between the two
    scorings, so a long evaluation still shows a live run."""
    try:
        result = train_adapter(
            base=base_model,
            examples=list(examples),
            config=config,
            output=output,
            device=device,
            on_progress=on_progress,
            cancelled=cancelled,
        )
    except TrainingCancelled as stop:
        return RunOutcome("cancelled", error=str(stop))
    except ModelUnavailable as problem:
        return RunOutcome("failed", error=str(problem))
    compute = {
        "device": device,
        "seconds": round(result.seconds, 2),
        "tokens": result.tokens,
        "tokens_per_second": round(result.tokens_per_second, 1),
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "notes": result.notes,
    }
    on_trained(compute)
    policy = Policy.from_bot(moderation_policy)
    tokenizer, base = load_base(base_model, device)
    base_scores = score(base, tokenizer, examples, policy=policy, device=device, max_tokens=config.max_tokens)
    on_alive()
    tuned = load_tuned(base, output / "adapter")  # the adapter goes onto the same copy: one model in memory
    tuned_scores = score(tuned, tokenizer, examples, policy=policy, device=device, max_tokens=config.max_tokens)
    worse = regressions(base_scores, tuned_scores)
    metrics = {"base": base_scores.as_dict(), "tuned": tuned_scores.as_dict(), "regressions": worse}
    return RunOutcome("rejected" if worse else "ready", compute=compute, metrics=metrics)
