"""A tuned adapter's files on the host that trained it and on the hosts that use it.

Training writes into MEDIA_ROOT/adapters/bot-<id>/v<n>/ (`runs.adapter_path`). With the
local media folder as the file store (the default) every process reads them there. With
object storage (`NEO_STORAGE=s3://...`) the training worker publishes the folder when
the run ends, and a generation worker that lacks it fetches it into its own MEDIA_ROOT
first, written under a temporary name and renamed, so a half-fetched adapter is never
loaded.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage

from bots.models import ModelVersion
from neo_support.storage_config import LOCAL_BACKEND


def shared_storage() -> bool:
    """Whether files live in a store other than this host's MEDIA_ROOT."""
    return bool(settings.STORAGES["default"]["BACKEND"] != LOCAL_BACKEND)


def _local(version: ModelVersion) -> Path:
    return Path(settings.MEDIA_ROOT) / version.adapter_dir


def adapter_publish(*, version: ModelVersion) -> int:
    """Copy the run's files (dataset, adapter) to object storage; the number copied.
    Idempotent: a file already stored under the same name is replaced. The training data
    then lives in the store alone (this host's copy is removed), so an erasure run on any
    host reaches every copy of it (bots.privacy)."""
    if not shared_storage():
        return 0
    root = _local(version)
    copied = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = f"{version.adapter_dir}/{path.relative_to(root).as_posix()}"
        if default_storage.exists(name):
            default_storage.delete(name)
        with path.open("rb") as handle:
            default_storage.save(name, File(handle))
        copied += 1
    (root / "dataset.jsonl").unlink(missing_ok=True)
    return copied


def _fetch_folder(prefix: str, target: Path) -> None:
    folders, files = default_storage.listdir(prefix)
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        with default_storage.open(f"{prefix}/{name}", "rb") as source, (target / name).open("wb") as copy:
            shutil.copyfileobj(source, copy)
    for folder in folders:
        _fetch_folder(f"{prefix}/{folder}", target / folder)


def adapter_folder(*, version: ModelVersion) -> Path:
    """The local folder of the version's adapter weights, fetched from object storage when
    this host does not have them yet."""
    folder = _local(version) / "adapter"
    if not shared_storage() or (folder / "adapter_config.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".adapter-"))
    try:
        _fetch_folder(f"{version.adapter_dir}/adapter", temporary)
        if not (temporary / "adapter_config.json").exists():
            return folder  # not published (yet): loading it reports the adapter unavailable
        with contextlib.suppress(OSError):  # another thread of this host fetched it meanwhile
            temporary.rename(folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def adapter_dataset(*, version: ModelVersion) -> File | None:
    """The run's training data, opened for reading (None when there is none)."""
    local = _local(version) / "dataset.jsonl"
    if local.exists():
        return File(local.open("rb"))
    name = f"{version.adapter_dir}/dataset.jsonl"
    if shared_storage() and default_storage.exists(name):
        return default_storage.open(name, "rb")
    return None
