"""The deployment's own indexing rate, measured on its ingests, for upload estimates.

Each slice of a document the indexing worker finishes records the reference chunks
(retrieval.estimates.REFERENCE_CHUNK_TOKENS tokens) it indexed per second, parsing,
embedding and storing included; the estimate uses a moving average of them instead of
the per-core constant. Kept in Django's cache: Redis when workers run apart, so the web
process sees what the indexing workers measured; this process's memory in the embedded
default, where ingests run in the web process itself.
"""

from __future__ import annotations

from django.core.cache import cache

from retrieval.estimates import REFERENCE_CHUNK_TOKENS

RATE_KEY = "retrieval:ingest-rate"
# Fewer chunks than this in one call time the fixed costs more than the rate.
MIN_CHUNKS = 32
# Weight of the newest measurement in the moving average.
NEWEST_WEIGHT = 0.3
KEPT_SECONDS = 7 * 24 * 3600


def ingest_rate_record(*, chunks: int, chunk_size: int, seconds: float) -> None:
    """Record that `chunks` chunks of `chunk_size` tokens were indexed in `seconds`."""
    if chunks < MIN_CHUNKS or seconds <= 0:
        return
    observed = chunks * chunk_size / REFERENCE_CHUNK_TOKENS / seconds
    previous = ingest_rate_measured()
    rate = observed if previous is None else previous + NEWEST_WEIGHT * (observed - previous)
    cache.set(RATE_KEY, rate, timeout=KEPT_SECONDS)


def ingest_rate_measured() -> float | None:
    """Reference chunks a second, or None before any ingest was measured."""
    rate = cache.get(RATE_KEY)
    return float(rate) if rate else None
