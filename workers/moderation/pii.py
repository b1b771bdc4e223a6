"""Personal data: emails, phone numbers, card numbers (Luhn-checked), IBANs and national
ids, found by Microsoft Presidio's recognisers over a blank spaCy pipeline (no model
to download), and redacted."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import cache
from typing import Any

from workers.moderation.verdicts import Action, Finding

ENTITIES = {
    "EMAIL_ADDRESS": "[email]",
    "PHONE_NUMBER": "[phone]",
    "CREDIT_CARD": "[card number]",
    "IBAN_CODE": "[IBAN]",
    "US_SSN": "[national id]",
    "UK_NHS": "[national id]",
    "ES_NIF": "[national id]",
    "IT_FISCAL_CODE": "[national id]",
    "IN_AADHAAR": "[national id]",
    "AU_TFN": "[national id]",
}
MIN_SCORE = 0.4
_lock = threading.Lock()


@cache
def _analyzer() -> Any:
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    # Presidio's email check asks tldextract for the public suffix list, which would go
    # to the network; the snapshot shipped with tldextract is enough.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class BlankSpacyEngine(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]

    engine = BlankSpacyEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(nlp_engine=engine, languages=["en"])
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


@cache
def _entities() -> list[str]:
    """The entities above that Presidio recognises in English (some national ids need
    other languages' recognisers)."""
    return [entity for entity in ENTITIES if entity in set(_analyzer().get_supported_entities("en"))]


def warm_up() -> None:
    """Build the recognisers now (a few seconds) rather than on the first message."""
    PiiFilter().check("warm up: jo@example.com")


class PiiFilter:
    name = "pii"

    def __init__(self, *, action: Action = Action.REDACT) -> None:
        self.action = action

    def check(self, text: str, *, known: Iterable[str] = ()) -> list[Finding]:
        """Personal data in `text`; values that appear in `known` (the retrieved passages,
        for a bot's answer) are the documents' own and pass."""
        if not text.strip():
            return []
        with _lock:  # spaCy pipelines are not thread-safe
            results = _analyzer().analyze(text=text, language="en", entities=_entities(), score_threshold=MIN_SCORE)
        sources = [source for source in known if source]
        findings = []
        for result in results:
            value = text[result.start : result.end]
            if any(value in source for source in sources):
                continue
            label = ENTITIES[result.entity_type]
            findings.append(
                Finding(self.name, self.action, f"{label.strip('[]')} found", result.start, result.end, label)
            )
        return findings
