"""Files in object storage (NEO_STORAGE=s3://...): uploads, attachments and tuned adapters
go to a real S3-compatible server (moto in server mode on loopback), not this host's
media folder, and a host with an empty media folder reads them back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from bots.models import Attachment
from bots.tickets.services import ticket_receive_email
from bots.tuning.adapter_files import adapter_dataset, adapter_folder, adapter_publish
from neo_support.storage_config import storage_from_env
from retrieval.models import Document, DocumentStatus
from retrieval.search import search
from retrieval.services.documents import document_create_from_file, document_delete
from retrieval.services.ingestion import documents_ingest_all
from tests.factories import BotFactory, KnowledgeBaseFactory, ModelVersionFactory, OrganizationFactory
from tests.own_services import OwnS3

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[OwnS3]:
    server = OwnS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(settings, s3_server: OwnS3, tmp_path: Path) -> OwnS3:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "web-host-media"
    settings.STORAGES = {**settings.STORAGES, "default": storage_from_env(s3_server.environ())}
    return s3_server


def test_an_uploaded_document_is_stored_in_the_bucket_and_ingested_from_there(  # type: ignore[no-untyped-def]
    s3: OwnS3, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    document = document_create_from_file(
        knowledge_base=knowledge_base,
        filename="returns.md",
        data=b"# Returns\n\nReturned parcels are refunded within five working days.",
        queue=False,
    )
    key = f"media/{document.file.name}"
    assert key in s3.keys("media/documents/")
    assert not (tmp_path / "web-host-media" / "documents").exists(), "nothing lands in the local media folder"

    settings.MEDIA_ROOT = tmp_path / "indexing-host-media"  # another host reads it from the bucket
    documents_ingest_all(documents=[Document.objects.select_related("knowledge_base").get(pk=document.pk)])
    assert Document.objects.get(pk=document.pk).status == DocumentStatus.READY
    knowledge_base.refresh_from_db()
    hits = search(knowledge_bases=[knowledge_base], query="when are returns refunded", k=1)
    assert hits[0].document_title == "Returns"

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=Document.objects.get(pk=document.pk))
    assert key not in s3.keys("media/documents/")


def test_two_uploads_with_the_same_name_keep_both_files(s3: OwnS3) -> None:
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    first, second = (
        document_create_from_file(knowledge_base=knowledge_base, filename="faq.txt", data=text, queue=False)
        for text in (b"First version of the FAQ.", b"Second version of the FAQ.")
    )
    assert first.file.name != second.file.name
    assert first.file.open("rb").read() == b"First version of the FAQ."


def test_an_email_attachment_is_stored_in_the_bucket(s3: OwnS3) -> None:
    bot = BotFactory(organization=OrganizationFactory())
    raw = (
        b"From: Ann <ann@example.com>\r\nTo: support@example.com\r\nSubject: Broken lamp\r\n"
        b"Message-ID: <lamp-1@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nThe lamp arrived broken, photo attached.\r\n"
        b'--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="lamp.png"\r\n\r\n'
        b"PNGDATA\r\n--b--\r\n"
    )
    ticket_receive_email(bot=bot, raw=raw)
    attachment = Attachment.objects.get(filename="lamp.png")
    assert f"media/{attachment.file.name}" in s3.keys("media/attachments/")
    assert attachment.file.open("rb").read().strip() == b"PNGDATA"


def test_a_tuned_adapter_is_published_by_the_training_host_and_fetched_by_a_generation_host(
    s3: OwnS3, settings, tmp_path: Path
) -> None:
    version = ModelVersionFactory(bot=BotFactory(organization=OrganizationFactory()), status="ready")
    settings.MEDIA_ROOT = tmp_path / "training-host-media"
    trained = tmp_path / "training-host-media" / version.adapter_dir
    (trained / "adapter").mkdir(parents=True)
    (trained / "adapter" / "adapter_config.json").write_text(json.dumps({"r": 4}))
    (trained / "adapter" / "adapter_model.safetensors").write_bytes(b"\x00weights")
    (trained / "dataset.jsonl").write_text('{"question": "q", "answer": "a"}\n')
    assert adapter_publish(version=version) == 3
    assert not (trained / "dataset.jsonl").exists(), "the training data lives in the bucket alone"
    assert adapter_publish(version=version) == 2, "publishing again replaces, never duplicates"
    assert len(s3.keys(f"media/{version.adapter_dir}/")) == 3

    settings.MEDIA_ROOT = tmp_path / "generation-host-media"
    folder = adapter_folder(version=version)
    assert folder == tmp_path / "generation-host-media" / version.adapter_dir / "adapter"
    assert json.loads((folder / "adapter_config.json").read_text()) == {"r": 4}
    assert (folder / "adapter_model.safetensors").read_bytes() == b"\x00weights"
    assert not list(folder.parent.glob(".adapter-*")), "no half-fetched folder is left behind"
    dataset = adapter_dataset(version=version)
    assert dataset is not None and dataset.read() == b'{"question": "q", "answer": "a"}\n'


def test_an_adapter_never_published_is_not_fetched(s3: OwnS3, settings, tmp_path: Path) -> None:
    version = ModelVersionFactory(bot=BotFactory(organization=OrganizationFactory()), status="ready")
    folder = adapter_folder(version=version)
    assert not folder.exists() and adapter_dataset(version=version) is None
    assert default_storage.listdir(version.adapter_dir) == ([], [])


def test_a_person_erased_on_another_host_leaves_the_bucket_s_training_dataset_too(
    s3: OwnS3, settings, tmp_path: Path
) -> None:
    from bots.privacy.erasure import person_erasure_run, person_erasure_start
    from bots.privacy.selectors import PersonKey, person_find, training_examples_of
    from tests.bots.privacy.person_data import BOT_TEXT, EMAIL, seed_person

    settings.MEDIA_ROOT = tmp_path / "training-host-media"
    seeded = seed_person(BotFactory(organization=OrganizationFactory()))
    adapter_publish(version=seeded.version)
    stored = f"{seeded.version.adapter_dir}/dataset.jsonl"
    assert BOT_TEXT.encode() in default_storage.open(stored, "rb").read()

    settings.MEDIA_ROOT = tmp_path / "web-host-media"  # no local copy: the export reads the bucket's
    organization = seeded.bot.organization
    person = person_find(organization=organization, key=PersonKey.parse("email", EMAIL))
    assert any(BOT_TEXT in json.dumps(example) for _, example in training_examples_of(person))

    settings.MEDIA_ROOT = tmp_path / "default-worker-media"  # the erasure runs on a third host
    started = person_erasure_start(organization=organization, key=PersonKey.parse("email", EMAIL))
    assert person_erasure_run(erasure=started.erasure) == "done"
    assert list(started.erasure.model_versions.all()) == [seeded.version]
    assert BOT_TEXT.encode() not in default_storage.open(stored, "rb").read()
