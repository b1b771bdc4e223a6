"""The tuning task. Thin: reload the row, return quietly if it is gone, call one service.

The name is fixed (`name=`) and predates this package, so messages already queued under
it still route after an upgrade.
"""

from __future__ import annotations

from bots.models import ModelVersion
from bots.tuning.runs import model_version_train
from neo_support.tasking import task


@task(queue="training", name="workers.tasks.train_model_version")
def train_model_version(version_id: int) -> str:
    """Tune a bot's adapter (bots.tuning.runs). Delivered again after a worker died, it
    resumes from the checkpoint; for a finished version it does nothing."""
    version = ModelVersion.objects.select_related("bot").filter(pk=version_id).first()
    if version is None:
        return "gone"
    return model_version_train(version)
