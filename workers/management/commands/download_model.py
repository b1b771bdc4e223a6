from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.generation.model import local_weights


class Command(BaseCommand):
    help = (
        "Fetch a generation model's weights into the Hugging Face cache (run on a machine with internet "
        "access; copy the cache, or the folder given with --to, to machines without). The only command that "
        "downloads the model: servers and workers read it from this machine and never fetch it themselves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="Hugging Face id (default: NEO_MODEL).")
        parser.add_argument("--to", type=Path, help="Also place a plain copy in this folder (set NEO_MODEL to it).")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"] or settings.NEO_MODEL
        if Path(name).is_dir():
            self.stdout.write(f"{name} is a local folder already; nothing to download.")
            return
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
            raise CommandError(
                "HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it on a machine with internet."
            )
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "merges.txt", "vocab.*"]
        try:
            path = snapshot_download(name, allow_patterns=patterns)
            if local_weights(name) is None:  # an older repository, with PyTorch weights only
                patterns.append("pytorch_model*.bin")
                path = snapshot_download(name, allow_patterns=patterns)
            if options["to"] is not None:
                path = snapshot_download(name, allow_patterns=patterns, local_dir=options["to"])
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
            raise CommandError(f"Could not download {name!r}: {error}") from None
        if local_weights(name) is None:
            raise CommandError(f"{name!r} was downloaded to {path} but holds no model weights this server reads.")
        if name == settings.NEO_MODEL:
            self.stdout.write(
                f"{name} is ready in {path}. Running servers and workers pick it up within "
                f"{settings.NEO_MODEL_RETRY_SECONDS} s (NEO_MODEL_RETRY_SECONDS), without a restart."
            )
        else:
            self.stdout.write(f"{name} is ready in {path}. To use it, set NEO_MODEL={name} and restart.")
        if options["to"] is not None:
            self.stdout.write(f"Machines given a copy of {path} use it with NEO_MODEL={path}.")
