"""Which generation queue serves which base model, when one deployment serves several.

`NEO_MODEL` is the default base model, served by the queue `generation`; each model in
`NEO_MODELS` gets a queue of its own, named from the model (`generation-<slug>-<hash>`),
served by generation workers started with `-Q` that queue. A bot that chose a model
has its replies, ticket answers and summaries sent to that model's queue, so every
worker process loads exactly the models of the queues it consumes. In the embedded
default the one process loads each model on its first reply.

Plain Python: settings import it before Django is set up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

DEFAULT_QUEUE = "generation"


def served_models(default_model: str, extra_models: Iterable[str]) -> tuple[str, ...]:
    """The default model first, then the others, each once."""
    return tuple(dict.fromkeys([default_model, *(model for model in extra_models if model)]))


def model_not_served(model: str, *, default_model: str, extra_models: Iterable[str]) -> str | None:
    """Why `model` cannot be chosen here, naming the served models; None when it is served."""
    served = served_models(default_model, extra_models)
    if model in served:
        return None
    return f"{model or 'a blank name'} is not served here; one of: {', '.join(served)}."


def generation_queue(model: str, *, default_model: str) -> str:
    """The queue whose workers serve `model` ("" or the default model: `generation`).
    Stable across processes: derived from the name alone."""
    if not model or model == default_model:
        return DEFAULT_QUEUE
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[-32:].strip("-")
    return f"{DEFAULT_QUEUE}-{slug}-{hashlib.sha256(model.encode()).hexdigest()[:6]}"


def queue_models(default_model: str, extra_models: Iterable[str]) -> dict[str, str]:
    """Each generation queue and the model its workers load."""
    return {
        generation_queue(model, default_model=default_model): model
        for model in served_models(default_model, extra_models)
    }
