"""Base model against tuned adapter on the held-back conversations, before deployment.

Four figures per model, on the validation split's answers:

- perplexity of the agent's (or approved) answer given its prompt;
- groundedness: the share of the generated answer's sentences the moderation
  grounding check finds supported by the passages in the prompt (prompts with passages);
- moderation pass rate: generated answers the output screen lets through without
  removing or blocking anything;
- overlap: content-word F1 between the generated answer and the person's answer.

A tuned adapter is deployable only when it regresses on none of them: perplexity no
higher, the three rates no more than `TOLERANCE` lower (a few held-back answers make
rates noisy; the figure is shown with the verdict).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from workers.generation.prompt import STOP_SEQUENCES, cut_at_stop
from workers.moderation.grounding import GroundingCheck, content_words
from workers.moderation.pipeline import OutputScreen, Policy
from workers.moderation.verdicts import Action
from workers.training.dataset import Example
from workers.training.finetune import perplexity, prompt_text

TOLERANCE = 0.02
MAX_ANSWERS = 50
_PASSAGES = re.compile(r"Passages:\n(.*?)(?:\n\nConversation:|\Z)", re.S)
_PASSAGE_HEAD = re.compile(r"^\[\d+\] .*$", re.M)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Scores:
    perplexity: float
    groundedness: float | None  # None: no held-back prompt had passages
    moderation_pass: float
    overlap: float
    answers: int

    def as_dict(self) -> dict[str, Any]:
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in asdict(self).items()}


def passages_of(prompt: str) -> list[str]:
    match = _PASSAGES.search(prompt)
    if not match:
        return []
    return [part.strip() for part in _PASSAGE_HEAD.split(match.group(1)) if part.strip()]


def overlap_f1(answer: str, reference: str) -> float:
    ours, theirs = Counter(content_words(answer)), Counter(content_words(reference))
    common = sum((ours & theirs).values())
    if not common:
        return 0.0
    precision, recall = common / sum(ours.values()), common / sum(theirs.values())
    return 2 * precision * recall / (precision + recall)


def generate(model: Any, tokenizer: Any, example: Example, *, max_new_tokens: int, device: str, max_tokens: int) -> str:
    """Greedy, in the run-time prompt format: ended by the model's end tokens, and cut at
    the stop sequences for a completion prompt."""
    import torch

    prompt = prompt_text(tokenizer, example)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-(max_tokens - max_new_tokens) :]
    with torch.inference_mode():
        output = model.generate(
            input_ids=torch.tensor([ids], device=device),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    text = tokenizer.decode(output[0][len(ids) :], skip_special_tokens=True)
    return text.strip() if prompt != example.prompt else cut_at_stop(text, STOP_SEQUENCES)[0].strip()


def score(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    policy: Policy,
    device: str = "cpu",
    max_new_tokens: int = 60,
    max_tokens: int = 512,
) -> Scores:
    held_back = [e for e in examples if e.split == "validation" and e.source != "knowledge"][:MAX_ANSWERS]
    if not held_back:
        raise ValueError("No held-back answers to evaluate on.")
    grounded: list[float] = []
    passed = overlaps = 0.0
    for example in held_back:
        answer = generate(
            model, tokenizer, example, max_new_tokens=max_new_tokens, device=device, max_tokens=max_tokens
        )
        passages = passages_of(example.prompt)
        if passages:
            check = GroundingCheck(passages)
            sentences = [s for s in _SENTENCE.split(answer) if s.strip()]
            grounded.append(sum(check.support(s).supported for s in sentences) / len(sentences) if sentences else 0.0)
        verdict = OutputScreen(policy, passages=passages).screen(answer)
        passed += verdict.action < Action.REMOVE and bool(answer)
        overlaps += overlap_f1(answer, example.answer)
    return Scores(
        perplexity=perplexity(model, tokenizer, held_back, max_tokens=max_tokens, device=device),
        groundedness=sum(grounded) / len(grounded) if grounded else None,
        moderation_pass=passed / len(held_back),
        overlap=overlaps / len(held_back),
        answers=len(held_back),
    )


def regressions(base: Scores, tuned: Scores) -> list[str]:
    """What the tuned model does worse than the base; empty when it may be deployed."""
    found = []
    if not tuned.perplexity <= base.perplexity:
        found.append(f"perplexity {tuned.perplexity:.2f} > {base.perplexity:.2f}")
    pairs = [("groundedness", base.groundedness, tuned.groundedness)]
    pairs += [("moderation pass rate", base.moderation_pass, tuned.moderation_pass)]
    pairs += [("overlap with the agents' answers", base.overlap, tuned.overlap)]
    for name, before, after in pairs:
        if before is not None and after is not None and after < before - TOLERANCE:
            found.append(f"{name} {after:.2f} < {before:.2f}")
    return found
