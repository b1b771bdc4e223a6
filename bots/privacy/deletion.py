"""What erasure and retention both do when rows go: keep analytics' per-day counts,
take conversations out of the stored training datasets, delete files, and delete rows in
small committed batches."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet

from bots.analytics.selectors import daily_counts_of
from bots.models import ExpiredDailyCount, ModelVersion
from bots.privacy.selectors import dataset_examples, dataset_path, person_groups
from bots.tuning.adapter_files import shared_storage
from neo_support.models import Organization

BATCH = 500


def expired_counts_add(*, organization: Organization, conversation_ids: list[int]) -> int:
    """Add these conversations' analytics counts to the kept per-day counts; call it in
    the transaction that deletes them (or records that they will be), so they count once."""
    added = 0
    for (bot_id, is_test, day), counts in daily_counts_of(conversation_ids).items():
        row, _ = ExpiredDailyCount.objects.select_for_update().get_or_create(
            organization=organization, bot_id=bot_id, day=day, is_test=is_test
        )
        merged = dict(row.counts)
        for name, value in counts.items():
            merged[name] = int(merged.get(name, 0)) + value
        ExpiredDailyCount.objects.filter(pk=row.pk).update(counts=merged)
        added += 1
    return added


def dataset_contains(version: ModelVersion, conversation_ids: Iterable[int]) -> bool:
    groups = person_groups(list(conversation_ids))
    return any(example.get("group") in groups for example in dataset_examples(version))


def dataset_scrub(version: ModelVersion, conversation_ids: Iterable[int]) -> int:
    """Rewrite the version's stored dataset without the examples of these conversations,
    this host's copy and the one in object storage alike. Returns how many examples went."""
    groups = person_groups(list(conversation_ids))
    if not groups:
        return 0
    return max(_local_dataset_scrub(version, groups), _stored_dataset_scrub(version, groups))


def _stored_dataset_scrub(version: ModelVersion, groups: set[str]) -> int:
    """The object-storage copy rewritten without `groups`' examples (a store has no rename:
    the old object is replaced by the new one; a worker killed in between leaves no
    dataset, never one with the person in it)."""
    name = f"{version.adapter_dir}/dataset.jsonl"
    if not shared_storage() or not default_storage.exists(name):
        return 0
    kept: list[bytes] = []
    removed = 0
    with default_storage.open(name, "rb") as lines:
        for line in lines:
            if line.strip() and json.loads(line).get("group") in groups:
                removed += 1
            else:
                kept.append(line)
    if removed:
        default_storage.delete(name)
        default_storage.save(name, ContentFile(b"".join(kept)))
    return removed


def _local_dataset_scrub(version: ModelVersion, groups: set[str]) -> int:
    """This host's copy rewritten without `groups`' examples (written beside it, then
    renamed over it: a killed worker leaves the old or the new file, never half of one)."""
    path = dataset_path(version)
    if not path.is_file():
        return 0
    kept_path = path.with_suffix(".jsonl.scrubbing")
    removed = 0
    with path.open(encoding="utf-8") as lines, kept_path.open("w", encoding="utf-8") as kept:
        for line in lines:
            if line.strip() and json.loads(line).get("group") in groups:
                removed += 1
                continue
            kept.write(line)
    if removed:
        os.replace(kept_path, path)
    else:
        kept_path.unlink()
    return removed


def files_delete(names: Iterable[str]) -> int:
    """Delete these files of the media storage; one already gone counts as deleted."""
    deleted = 0
    for name in names:
        if name and default_storage.exists(name):
            default_storage.delete(name)
        deleted += 1
    _prune_empty_parents(names)
    return deleted


def _prune_empty_parents(names: Iterable[str]) -> None:
    for name in names:
        try:
            parent = Path(default_storage.path(name)).parent
        except NotImplementedError:  # storage without local paths
            return
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def rows_delete_in_batches(
    queryset: QuerySet, *, on_batch: Callable[[int], None] | None = None, batch: int | None = None
) -> int:
    """Delete the rows of `queryset` (what it cascades to included) `batch` at a time,
    each batch in its own transaction together with `on_batch(count)`, so progress
    recorded there is exactly what was committed."""
    total = 0
    batch = batch or BATCH
    model = queryset.model
    while True:
        with transaction.atomic():
            pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
            if not pks:
                return total
            model.objects.filter(pk__in=pks).delete()
            if on_batch is not None:
                on_batch(len(pks))
        total += len(pks)


def counter_add(model: type, pk: int, field: str, key: str, value: int) -> None:
    """Add `value` to `field[key]` of one row (a JSON object of counts), in the caller's
    transaction. Read and written under a row lock so two writers do not lose an add."""
    row = model.objects.select_for_update().get(pk=pk)  # type: ignore[attr-defined]
    counts = dict(getattr(row, field))
    counts[key] = int(counts.get(key, 0)) + value
    model.objects.filter(pk=pk).update(**{field: counts})  # type: ignore[attr-defined]
