"""Which language a ticket is written in: py3langid's bundled naive-Bayes model (no download),
restricted to the languages a support desk is likely to see, so that short texts are not
labelled with a language nobody on the team reads."""

from __future__ import annotations

import threading
from typing import Any

LANGUAGES = (
    "en", "de", "fr", "es", "it", "nl", "pt", "sv", "da", "no", "fi",
    "pl", "cs", "ru", "uk", "tr", "ar", "he", "hi", "ja", "ko", "zh",
)  # fmt: skip
UNDETERMINED = "und"
# Fewer letters than this carry too little signal ("ok", "hi", "?!").
MIN_LETTERS = 3
# Below this probability the best guess is barely better than the others: "und" with that probability.
MIN_CONFIDENCE = 0.3

_identifier: Any = None
_lock = threading.Lock()


def _get_identifier() -> Any:
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(LANGUAGES))
            _identifier = identifier
    return _identifier


def detect_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability among LANGUAGES); ("und", 0.0) for empty or very short text, and
    ("und", probability) when even the best guess is below MIN_CONFIDENCE."""
    if sum(character.isalpha() for character in text) < MIN_LETTERS:
        return UNDETERMINED, 0.0
    language, probability = _get_identifier().classify(text)
    confidence = float(probability)
    if confidence < MIN_CONFIDENCE:
        return UNDETERMINED, confidence
    return str(language), confidence
