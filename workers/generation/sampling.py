"""Per-token choices and per-reply numbers, shared by the decode loop run alone
(`workers.generation.streaming`) and in a batch (`workers.generation.batching`):
how the next token is picked, which decoded characters are kept, and what a reply's
generation cost.

This module depends on no other module of the package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplingParameters:
    max_new_tokens: int = 200
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None

    @classmethod
    def from_bot(cls, generation: dict[str, Any]) -> SamplingParameters:
        return cls(
            max_new_tokens=max(1, min(1024, int(generation.get("max_new_tokens", 200)))),
            temperature=max(0.0, float(generation.get("temperature", 0.0))),
            top_p=min(1.0, max(0.01, float(generation.get("top_p", 1.0)))),
            repetition_penalty=max(1.0, float(generation.get("repetition_penalty", 1.0))),
        )


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stopped_by: str = ""  # "eos", "stop_sequence", "length", "cancelled"
    model_version: str = ""  # "base" or the tuned version's label that wrote it
    model: str = ""  # the base model's name (NEO_MODEL) that wrote it
    device: str = ""
    seconds: float = 0.0  # decoding, from the prompt's tokens to the last token
    # Where the time before the first token goes (the reply's timings show them):
    prompt_ms: float = 0.0  # building the prompt, fitted to the window with the tokenizer
    tokenize_ms: float = 0.0  # the prompt text to token ids
    # From handing the ids to the decoder until its first token came back: the batch
    # scheduler's queue handoff, the prefill and the first token's choice.
    prefill_ms: float | None = None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(text: str) -> str:
    """Decoded text without control characters: a byte-level model can emit NUL, which
    PostgreSQL cannot store (the reply failed as it was saved), and the rest only show
    as garbage. Removing characters keeps the text prefix-stable while it streams."""
    return _CONTROL.sub("", text)


def next_token(logits: Any, generated: list[int], params: SamplingParameters, generator: Any) -> int:
    import torch

    # Out of place: fp32 logits come back from `.float()` as the very tensor the model
    # made under inference mode, which the batch scheduler cannot change in place.
    logits = logits.float()
    if params.repetition_penalty > 1.0 and generated:
        seen = torch.tensor(sorted(set(generated)), device=logits.device)
        values = logits[seen]
        penalised = torch.where(values > 0, values / params.repetition_penalty, values * params.repetition_penalty)
        logits = logits.index_put((seen,), penalised)
    if params.temperature <= 1e-5:
        return int(torch.argmax(logits))
    probabilities = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        ordered, indices = torch.sort(probabilities, descending=True)
        keep = torch.cumsum(ordered, dim=-1) - ordered < params.top_p
        probabilities = torch.zeros_like(probabilities).scatter(0, indices[keep], ordered[keep])
    return int(torch.multinomial(probabilities, 1, generator=generator))


def is_plain_greedy(params: SamplingParameters) -> bool:
    """Greedy with no repetition penalty: the token is the row's argmax and nothing else."""
    return params.temperature <= 1e-5 and params.repetition_penalty <= 1.0


def next_tokens(
    logits: Any, generated: list[list[int]], params: list[SamplingParameters], generators: list[Any]
) -> list[int]:
    """The next token of every row of `logits` ([rows, vocabulary]). The plain greedy rows
    (a bot's default) are chosen by one argmax over them all and read back in one
    `tolist`: a per-row `int(torch.argmax(...))` costs a tensor op and a read-back per row
    at every step of the batch. The other rows go through `next_token` one by one."""
    import torch

    chosen: list[int | None] = [None] * len(params)
    greedy = [row for row, p in enumerate(params) if is_plain_greedy(p)]
    if greedy:
        rows = logits
        if len(greedy) < len(params):
            rows = logits.index_select(0, torch.tensor(greedy, device=logits.device))
        for row, token in zip(greedy, torch.argmax(rows, dim=-1).tolist(), strict=True):
            chosen[row] = token
    for row, p in enumerate(params):
        if chosen[row] is None:
            chosen[row] = next_token(logits[row], generated[row], p, generators[row])
    return [int(token) for token in chosen if token is not None]
