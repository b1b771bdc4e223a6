"""Token-by-token generation with a KV cache, yielding text as soon as it exists.

Our own decode loop rather than `model.generate`: it stops on our stop sequences,
can be cancelled between tokens, and computes logits for the last position only
(`logits_to_keep=1`): the prompt's other positions would be wasted work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from workers.generation.adapters import adapter_rows
from workers.generation.prefix_cache import prefill, shared_length
from workers.generation.prompt import STOP_SEQUENCES, cut_at_stop, held_back
from workers.generation.sampling import GenerationStats, SamplingParameters, next_token, printable

if TYPE_CHECKING:
    from workers.generation.batching import BatchScheduler
    from workers.generation.model import LoadedModel

# `cancelled` may ask Redis; it is asked between tokens at most this often, by the
# request's own thread, never by the decode loop that serves every request.
CANCEL_POLL_SECONDS = 0.1


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _decode_alone(
    loaded: LoadedModel,
    prompt_ids: list[int],
    params: SamplingParameters,
    cancelled: Callable[[], bool],
    adapter: str | None = None,
    shared: int = 0,
) -> Iterator[int]:
    """One sequence on its own: prefill, then a token at a time with the KV cache."""
    import torch

    budget = min(params.max_new_tokens, loaded.context_window - len(prompt_ids))
    generator = None
    if params.seed is not None:
        generator = torch.Generator(device=loaded.device).manual_seed(params.seed)
    generated: list[int] = []
    with torch.inference_mode():
        with adapter_rows(loaded.adapters, [adapter]):
            output = prefill(loaded, prompt_ids, shared=shared, adapter=adapter)
        for _ in range(max(0, budget)):
            if cancelled():
                return
            token = next_token(output.logits[0, -1], generated, params, generator)
            if token in loaded.end_token_ids:
                return
            generated.append(token)
            yield token
            with adapter_rows(loaded.adapters, [adapter]):
                output = loaded.model(
                    input_ids=torch.tensor([[token]], device=loaded.device), cache=output.cache, use_cache=True
                )


def stream_text(
    loaded: LoadedModel,
    prompt: str,
    params: SamplingParameters,
    *,
    stop_sequences: tuple[str, ...] = STOP_SEQUENCES,
    cancelled: Callable[[], bool] = lambda: False,
    stats: GenerationStats | None = None,
    scheduler: BatchScheduler | None = None,
    adapter: str | None = None,
    add_special_tokens: bool = True,
    head: str = "",
) -> Iterator[str]:
    """Yield pieces of the answer as they are decoded, alone or in `scheduler`'s batch.
    Text that might be the start of a stop sequence is held back until it is known not
    to be one. A prompt rendered with a chat template holds its special tokens already:
    pass `add_special_tokens=False`, or a Llama tokenizer adds a second BOS. `head`: the
    text `prompt` opens with in every prompt of its bot (`Prompt.head`), whose keys and
    values the model's prefix cache computes once."""
    stats = stats if stats is not None else GenerationStats()
    tokenizer = loaded.tokenizer
    tokenizing_since = time.perf_counter()
    prompt_ids = tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
    shared = 0
    if head and prompt.startswith(head):
        shared = shared_length(prompt_ids, tokenizer(head, add_special_tokens=add_special_tokens)["input_ids"])
    decoding_since = time.perf_counter()
    stats.tokenize_ms = _ms(decoding_since - tokenizing_since)
    stats.prompt_tokens = len(prompt_ids)
    stats.device = loaded.device
    budget = min(params.max_new_tokens, loaded.context_window - len(prompt_ids))
    finished = False

    def stop_wanted() -> bool:
        return finished

    if scheduler is not None:
        tokens = scheduler.submit(prompt_ids, params, stop_wanted, adapter=adapter, shared=shared)
    else:
        tokens = _decode_alone(loaded, prompt_ids, params, stop_wanted, adapter, shared)
    generated: list[int] = []
    sent = 0
    stats.stopped_by = ""
    polled = float("-inf")
    for token in tokens:
        if stats.prefill_ms is None:
            stats.prefill_ms = _ms(time.perf_counter() - decoding_since)
        if time.monotonic() - polled >= CANCEL_POLL_SECONDS:
            polled = time.monotonic()
            if cancelled():
                finished = True  # the batch drops the sequence at its next step
                stats.stopped_by = "cancelled"
                break
        generated.append(token)
        text, stopped = cut_at_stop(printable(tokenizer.decode(generated, skip_special_tokens=True)), stop_sequences)
        if stopped:
            stats.stopped_by = "stop_sequence"
            finished = True  # the batch drops the sequence at its next step
            if len(text) > sent:
                yield text[sent:]
            sent = len(text)
            break
        # An incomplete multi-byte character decodes to U+FFFD; wait for the rest of it.
        ready = len(text) - held_back(text, stop_sequences)
        if text.endswith("\ufffd"):
            ready = min(ready, len(text) - 1)
        if ready > sent:
            yield text[sent:ready]
            sent = ready
    stats.completion_tokens = len(generated)
    stats.seconds = time.perf_counter() - decoding_since
    if not stats.stopped_by:
        if cancelled():
            stats.stopped_by = "cancelled"
        else:
            stats.stopped_by = "length" if len(generated) >= budget else "eos"
            final, _ = cut_at_stop(printable(tokenizer.decode(generated, skip_special_tokens=True)), stop_sequences)
            final = final.rstrip("\ufffd")
            if len(final) > sent:
                yield final[sent:]
