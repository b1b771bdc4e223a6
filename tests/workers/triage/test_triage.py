"""Ticket triage: categories learned from labelled tickets, priority cues, language, and the
command that measures categorisation. Every sentence here is our own, not from an evaluation set."""

from __future__ import annotations

import csv
import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from workers.moderation.vectors import embed_text, embed_texts
from workers.triage.categories import CategoryModel, CategoryPrediction, TriageError
from workers.triage.evaluation import LabelledTicket, sample_per_category
from workers.triage.language import detect_language
from workers.triage.priority import PriorityRule, decide_priority

TICKETS = {
    "billing": [
        "I was charged the wrong amount on my last invoice",
        "Why is my monthly bill higher than usual?",
        "Please send me a copy of my invoice for March",
        "How do I update the credit card you charge?",
        "I want a refund for the subscription payment",
        "My payment failed but the money left my account",
        "Can I switch from monthly to yearly billing?",
        "The invoice shows a tax I should not pay",
        "Where can I download my receipts?",
        "You billed me after I cancelled my plan",
        "How much does the premium plan cost per month?",
        "I need to change the billing address on my invoices",
    ],
    "login": [
        "I forgot my password and the reset email never arrives",
        "The two-factor code is not accepted when I sign in",
        "My account is locked after too many attempts",
        "I can't log in with my Google account anymore",
        "The login page keeps saying my password is wrong",
        "How do I reset my password?",
        "Sign in loops back to the login screen",
        "I changed my email and now cannot sign in",
        "The authentication app was on my old phone",
        "Single sign-on fails for our whole team",
        "My session expires every few minutes and I have to log in again",
        "I never received the verification code to log in",
    ],
    "shipping": [
        "My package has not arrived yet",
        "Where is my order? It was due last week",
        "The tracking number does not work",
        "Can you ship to an address in Canada?",
        "My parcel was delivered to the wrong house",
        "How long does express delivery take?",
        "The courier says the box was returned to sender",
        "I want to change the delivery address of my order",
        "The shipment is stuck in customs",
        "Do you offer free shipping on large orders?",
        "The delivery arrived damaged and crushed",
        "When will my order be dispatched?",
    ],
    "bugs": [
        "The app crashes when I open the settings page",
        "Export to PDF produces an empty file",
        "The dashboard shows an error 500 after the update",
        "Buttons overlap on the mobile layout",
        "Search returns no results even for exact names",
        "The page freezes when I upload a large image",
        "Notifications are sent twice for every message",
        "The chart does not render in Safari",
        "Saving a draft throws an unexpected error",
        "The date picker shows the wrong month",
        "Sorting by price puts the items in random order",
        "The CSV import skips every other row",
    ],
}
PARAPHRASES = [
    ("Could you explain the extra fee on this month's statement?", "billing"),
    ("I'd like my money back for the last charge", "billing"),
    ("The password reset link doesn't work and I'm stuck outside my account", "login"),
    ("It won't let me sign into my profile", "login"),
    ("The delivery is late, where is my shipment?", "shipping"),
    ("My order never got to me", "shipping"),
    ("The mobile app closes itself whenever I tap on my profile", "bugs"),
    ("Uploading a photo makes the whole screen hang", "bugs"),
]
OUT_OF_SCOPE = "what's the weather on Mars"


def labelled() -> tuple[list[str], list[str]]:
    texts = [text for texts in TICKETS.values() for text in texts]
    labels = [label for label, texts in TICKETS.items() for _ in texts]
    return texts, labels


@pytest.fixture(scope="module")
def model() -> CategoryModel:
    texts, labels = labelled()
    return CategoryModel().fit(embed_texts(texts), labels, texts=texts)


# Categories


def test_it_routes_new_paraphrases_to_their_category(model: CategoryModel) -> None:
    texts = [text for text, _ in PARAPHRASES]
    predictions = model.predict_many(embed_texts(texts), texts=texts)
    assert [p.category for p in predictions] == [label for _, label in PARAPHRASES]


def test_it_routes_a_single_ticket_with_or_without_its_text(model: CategoryModel) -> None:
    text = "I was billed twice for my subscription this month"
    with_text = model.predict(embed_text(text), text=text)
    without_text = model.predict(embed_text(text))
    assert with_text.category == without_text.category == "billing"
    assert isinstance(with_text, CategoryPrediction)
    assert 0.0 < with_text.confidence <= 1.0
    assert len(with_text.alternatives) == 3
    assert with_text.alternatives[0] == ("billing", with_text.confidence)
    assert [p for _, p in with_text.alternatives] == sorted((p for _, p in with_text.alternatives), reverse=True)


def test_it_says_none_fits_for_an_unrelated_question(model: CategoryModel) -> None:
    prediction = model.predict(embed_text(OUT_OF_SCOPE), text=OUT_OF_SCOPE)
    assert prediction.category is None
    assert len(prediction.alternatives) == 3  # still offered to the agent who routes it by hand


def test_the_gate_can_be_turned_off_or_tightened() -> None:
    texts, labels = labelled()
    vectors = embed_texts(texts)
    lenient = CategoryModel(min_confidence=0.0, min_similarity=-1.0).fit(vectors, labels)
    assert lenient.predict(embed_text(OUT_OF_SCOPE)).category is not None
    strict = CategoryModel(min_confidence=0.999).fit(vectors, labels)
    assert strict.predict(embed_text("My package has not arrived")).category is None


def test_it_lists_its_categories(model: CategoryModel) -> None:
    assert model.categories == ["billing", "bugs", "login", "shipping"]


def test_fitting_one_category_is_an_error() -> None:
    texts = TICKETS["billing"]
    with pytest.raises(TriageError, match="at least 2 categories"):
        CategoryModel().fit(embed_texts(texts), ["billing"] * len(texts))


def test_fitting_mismatched_or_unlabelled_rows_is_an_error() -> None:
    vectors = np.eye(3, 8, dtype=np.float32)
    with pytest.raises(TriageError, match="one vector per label"):
        CategoryModel().fit(vectors, ["a", "b"])
    with pytest.raises(TriageError, match="one text per label"):
        CategoryModel().fit(vectors, ["a", "b", "a"], texts=["x"])
    with pytest.raises(TriageError, match="non-empty label"):
        CategoryModel().fit(vectors, ["a", "b", " "])


def test_predicting_before_fitting_or_with_other_vectors_is_an_error(model: CategoryModel) -> None:
    with pytest.raises(TriageError, match="fit"):
        CategoryModel().predict(np.ones(384, dtype=np.float32))
    with pytest.raises(TriageError, match="384 dimensions"):
        model.predict(np.ones(10, dtype=np.float32))


def test_texts_without_any_words_fall_back_to_the_embeddings() -> None:
    texts, labels = labelled()
    model = CategoryModel().fit(embed_texts(texts), labels, texts=["..."] * len(texts))
    assert model.predict(embed_text("Where is my parcel?"), text="Where is my parcel?").category == "shipping"


def test_a_per_category_sample_is_reproducible_and_keeps_small_categories() -> None:
    tickets = [LabelledTicket(f"t{i}", "big") for i in range(20)] + [LabelledTicket("s", "small")]
    first = sample_per_category(tickets, 5, seed=3)
    assert first == sample_per_category(tickets, 5, seed=3)
    assert sum(t.label == "big" for t in first) == 5
    assert LabelledTicket("s", "small") in first


# Priority


def test_an_outage_is_urgent() -> None:
    decision = decide_priority("Your service is down for everyone in our office!")
    assert decision.priority == "urgent"
    assert "mentions an outage" in decision.reasons
    assert decision.due_hours == 1.0
    assert decision.urgency >= 0.9


def test_a_feature_request_is_low() -> None:
    decision = decide_priority("It would be great to have a dark mode", subject="Feature request")
    assert decision.priority == "low"
    assert decision.due_hours == 72.0
    assert decision.urgency == 0.0


def test_saying_it_is_not_urgent_does_not_make_it_urgent() -> None:
    assert decide_priority("Not urgent, just wondering whether you support CSV export").priority == "low"


def test_a_plain_question_is_normal() -> None:
    decision = decide_priority("How do I change the name on my profile?")
    assert (decision.priority, decision.reasons, decision.due_hours) == ("normal", [], 24.0)


@pytest.mark.parametrize(
    ("text", "priority", "reason"),
    [
        ("I can't log in since this morning", "high", "cannot log in"),
        ("I have been locked out of my account", "high", "cannot log in"),
        ("You charged me twice for the same order", "high", "was charged twice"),
        ("There is an unauthorized charge on my statement", "urgent", "reports fraud or an unauthorised charge"),
        ("I think my account was hacked", "urgent", "security concern"),
        ("This is a formal GDPR request for all data you hold on me", "high", "legal or data-protection request"),
        ("Please reply asap about my question", "high", "asks for an urgent answer"),
        ("I need the signed contract by tomorrow", "high", "mentions a deadline"),
        ("I cannot log in and need access immediately", "urgent", "asks for an urgent answer"),
    ],
)
def test_built_in_cues_set_a_priority(text: str, priority: str, reason: str) -> None:
    decision = decide_priority(text)
    assert decision.priority == priority
    assert reason in decision.reasons


def test_an_enterprise_customer_goes_one_level_up_and_is_due_sooner() -> None:
    standard = decide_priority("How do I export my reports?")
    enterprise = decide_priority("How do I export my reports?", tier="Enterprise")
    assert (standard.priority, enterprise.priority) == ("normal", "high")
    assert "enterprise customer" in enterprise.reasons
    assert enterprise.due_hours < 4.0


def test_a_free_plan_is_capped_at_high_unless_security() -> None:
    outage = decide_priority("The whole platform is down", tier="free")
    assert outage.priority == "high"
    assert outage.due_hours > 4.0
    assert decide_priority("Someone hacked my account", tier="free").priority == "urgent"


def test_a_very_negative_tone_raises_normal_to_high() -> None:
    decision = decide_priority("This is awful, terrible, useless garbage and I hate it. Worst experience ever.")
    assert decision.sentiment <= -0.6
    assert decision.priority == "high"
    assert "very negative tone" in decision.reasons


def test_an_organization_rule_sets_at_least_its_priority_on_whole_words() -> None:
    rules = [PriorityRule("payroll run", "urgent")]
    decision = decide_priority("Our Payroll  run failed tonight", rules=rules, tier="free")
    assert decision.priority == "urgent"
    assert any("payroll run" in reason for reason in decision.reasons)
    assert decide_priority("Our payroll runs fine", rules=rules).priority == "normal"
    # A rule never lowers what the built-in cues decided.
    assert decide_priority("Everything is down", rules=[PriorityRule("down", "low")]).priority == "urgent"


def test_a_rule_with_an_unknown_priority_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown priority"):
        PriorityRule("invoice", "critical")


# Language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hello, my order has not arrived yet and I would like to know where it is.", "en"),
        ("Hallo, meine Bestellung ist noch nicht angekommen. Wo ist sie?", "de"),
        ("Bonjour, ma commande n'est pas encore arrivée. Où est-elle ?", "fr"),
        ("Hola, mi pedido todavía no ha llegado. ¿Dónde está?", "es"),
    ],
)
def test_it_detects_the_language(text: str, language: str) -> None:
    code, confidence = detect_language(text)
    assert code == language
    assert confidence > 0.9


@pytest.mark.parametrize("text", ["", "   ", "ok", "?!", "12345"])
def test_empty_or_very_short_text_is_undetermined(text: str) -> None:
    assert detect_language(text) == ("und", 0.0)


# The evaluate_triage command


def write_csv(path: Path, rows: list[tuple[str, str]], fields: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows))
    return path


def evaluate(*arguments: str) -> dict[str, str]:
    out = StringIO()
    call_command("evaluate_triage", *arguments, stdout=out, stderr=StringIO())
    return dict(token.split("=", 1) for token in out.getvalue().split())


@pytest.fixture
def training_rows() -> list[tuple[str, str]]:
    texts, labels = labelled()
    return list(zip(texts, labels, strict=True))


def test_the_command_measures_a_csv_split(tmp_path: Path, training_rows: list[tuple[str, str]]) -> None:
    train = write_csv(tmp_path / "train.csv", training_rows)
    test = write_csv(tmp_path / "test.csv", [(text, label) for text, label in PARAPHRASES])
    figures = evaluate("--train", str(train), "--test", str(test))
    assert figures["examples"] == "8"
    assert figures["categories"] == "4"
    assert float(figures["accuracy"]) == 1.0
    assert float(figures["macro_f1"]) == 1.0
    assert float(figures["none_fits_rate"]) == 0.0
    assert float(figures["ms_per_ticket"]) > 0
    assert "out_of_scope_recall" not in figures


def test_the_command_reads_jsonl_and_scores_the_none_label(
    tmp_path: Path, training_rows: list[tuple[str, str]]
) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [*training_rows, ("Tell me a joke about penguins", "other")])
    rows = [*PARAPHRASES[:4], (OUT_OF_SCOPE, "other"), ("Who won the chess world championship?", "other")]
    test = write_jsonl(tmp_path / "test.jsonl", rows)
    figures = evaluate("--train", str(train), "--test", str(test), "--none-label", "other")
    assert figures["categories"] == "4"  # "other" is not a category
    assert figures["train_examples"] == "48"
    assert float(figures["out_of_scope_recall"]) == 1.0
    assert float(figures["in_scope_accuracy"]) == 1.0
    assert float(figures["none_fits_rate"]) == pytest.approx(2 / 6, abs=1e-3)


def test_the_command_trains_on_a_sample_per_category(tmp_path: Path, training_rows: list[tuple[str, str]]) -> None:
    train = write_csv(tmp_path / "train.csv", training_rows)
    test = write_csv(tmp_path / "test.csv", PARAPHRASES)
    figures = evaluate("--train", str(train), "--test", str(test), "--per-category", "3", "--seed", "1")
    assert figures["train_examples"] == "12"
    assert figures["categories"] == "4"


def test_the_command_reads_other_field_names(tmp_path: Path, training_rows: list[tuple[str, str]]) -> None:
    train = write_csv(tmp_path / "train.csv", training_rows, fields=("body", "queue"))
    test = write_csv(tmp_path / "test.csv", PARAPHRASES, fields=("body", "queue"))
    figures = evaluate("--train", str(train), "--test", str(test), "--text-field", "body", "--label-field", "queue")
    assert figures["examples"] == "8"


def test_the_command_explains_bad_input(tmp_path: Path, training_rows: list[tuple[str, str]]) -> None:
    train = write_csv(tmp_path / "train.csv", training_rows)
    with pytest.raises(CommandError, match="no such file"):
        evaluate("--train", str(train), "--test", str(tmp_path / "missing.csv"))
    with pytest.raises(CommandError, match="no field 'category'"):
        evaluate("--train", str(train), "--test", str(train), "--label-field", "category")
    one = write_csv(tmp_path / "one.csv", [(text, "billing") for text in TICKETS["billing"]])
    with pytest.raises(CommandError, match="at least 2 categories"):
        evaluate("--train", str(one), "--test", str(train))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "hi", "label": "a"}\nnot json\n')
    with pytest.raises(CommandError, match="not JSON"):
        evaluate("--train", str(broken), "--test", str(train))
    with pytest.raises(CommandError, match="per-category"):
        evaluate("--train", str(train), "--test", str(train), "--per-category", "-1")
