"""Toxicity and hate: attacks on people for who they are are blocked; a customer
swearing about an invoice, someone condemning or quoting hate, a negation, and
"kill the process" pass.

Three signals go into one linear head (`classifier.py`):
- the sentence embedding, trained on exemplars the project wrote
  (`data/hate_exemplars.jsonl`: hateful statements and their hard contrasts:
  counter-speech, negation, reclaimed terms, abuse of non-protected targets,
  profanity in complaints, technical homonyms);
- alt-profanity-check's packaged classifier (`profanity.py`), on the de-obfuscated text;
- rule cues: a protected-group term is mentioned, negation, quoting or reporting,
  second-person address.
Profanity alone blocks only the bot's own words (an answer never swears).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

from workers.moderation.classifier import LinearTextModel, TrainingSettings
from workers.moderation.lexicon import DEHUMANISING, SWEARING, sentiment
from workers.moderation.normalise import normalise
from workers.moderation.profanity import profanity
from workers.moderation.spelling import repaired
from workers.moderation.verdicts import Action, Finding

MODEL_PATH = Path(__file__).resolve().parent / "data" / "toxicity.npz"
EXEMPLARS_PATH = Path(__file__).resolve().parent / "data" / "hate_exemplars.jsonl"
EXTRA_NAMES = (
    "profanity",
    "group_term",
    "negation",
    "reporting",
    "second_person",
    "positive",
    "negative",
    "group_positive",
    "group_negative",
    "reported_negative",
    "slur",
    "negated_negative",
    "negated_positive",
    "attributed",
    "self_reference",
)
SETTINGS = TrainingSettings(
    name="toxicity", extra_names=EXTRA_NAMES, embedding_weight=1.0, use_ngrams=False, regularisation=4.0
)
HATEFUL = "hateful towards a group"
PROFANE_ANSWER = "profanity in the bot's answer"
OUTPUT_PROFANITY = 0.8  # the bot's own text above this is blocked
INSULT_PROFANITY = 0.5  # profanity from here on makes a visitor's text abuse (`insulting`)

GROUP_TERMS = re.compile(
    r"\b(?:wom[ae]n|girls?|females?|men|males?|trans(?:gender)?|non-?binary|gays?|lesbians?|bi(?:sexual)?s?|queers?|"
    r"homosexuals?|lgbtq?\+?|black|blacks|africans?|asians?|chinese|arabs?|latin[oax]s?|hispanics?|mexicans?|"
    r"roma|gypsies|jews?|jewish|muslims?|islam(?:ic)?|christians?|hindus?|sikhs?|buddhists?|atheists?|"
    r"immigrants?|migrants?|refugees?|foreigners?|asylum|disabled|disabilit(?:y|ies)|deaf|blind|autistic|"
    r"wheelchair|mentally|old\s+people|elderly|indigenous|natives?|white\s+people|whites|people\s+of\s+colou?r)"
    r"(?:\s+(?:people|persons?|folks?|men|women|guys|kids|communit(?:y|ies)))?\b",
    re.IGNORECASE,
)
# Slurs for protected groups, matched on the de-obfuscated text. Their in-group, reclaimed
# use ("as a queer woman") is left to the head, which sees first-person and positive cues.
SLURS = re.compile(
    r"\b(?:nigg(?:er|a|ah)s?|coons?|spics?|wetbacks?|beaners?|chinks?|gooks?|japs?|pakis?|kikes?|yids?|"
    r"ragheads?|towelheads?|sand\s*niggers?|camel\s*(?:fuckers?|jockeys?)|muzzies?|gypos?|pikeys?|"
    r"fag(?:got)?s?|dykes?|trann(?:y|ies)|shemales?|he-?shes?|retards?|retarded|spaz(?:zes)?|cripples?|mongs?|"
    r"whores?|sluts?|bitch(?:es)?|cunts?|savages?|subhumans?)\b",
    re.IGNORECASE,
)
NEGATION = re.compile(
    r"\b(?:not|no|never|nobody|no\s+one|don't|dont|doesn't|isn't|aren't|wasn't|shouldn't|can't|cannot|won't|nothing)\b",
    re.IGNORECASE,
)
REPORTING = re.compile(
    r"[\"“].+?[\"”]|\b(?:said|says|saying|say\s+that|called|calling|claims?|claiming|wrote|posted|tweeted|told\s+me|"
    r"heard|statements?\s+like|comments?\s+like|racist|sexist|homophobic|transphobic|bigot\w*|hateful|hate\s+speech|"
    r"disgusting\s+(?:thing|comment)|stop\s+(?:saying|calling)|is\s+(?:wrong|unacceptable|not\s+ok(?:ay)?))\b",
    re.IGNORECASE,
)
SECOND_PERSON = re.compile(r"\b(?:you|your|you're|ur|u)\b", re.IGNORECASE)
# Hostility held by someone other than the writer, or named as a thing, which is how
# counter-speech talks about hate without quoting it: "your contempt for ...", "you
# really think ...", "telling them they are ...", "the hatred aimed at ...".
ATTRIBUTED = re.compile(
    r"\byour\s+(?:\w+\s+)?(?:hatred|hate|contempt|disgust|disdain|prejudice|bigotry|racism|sexism|homophobia|"
    r"transphobia|views?|opinions?|attitude)\b"
    r"|\b(?:(?:you|he|she|someone|anyone)|(?:people|anyone|those|someone)\s+who)\s+(?:\w+\s+)?(?:think|thinks|"
    r"believe|believes|say|says|said|claim|claims|tell|tells|call|calls|calling|telling|saying|want|wants)\b"
    r"|(?:^|[.!?]\s+)(?:saying|telling|calling|threatening|claiming|suggesting|insisting|shouting|posting|yelling|"
    r"posts?\s+(?:saying|claiming)|comments?\s+(?:saying|claiming))\b"
    r"|\bif\s+you(?:'re|\s+are)?\s+\w+ing\b|\b(?:how\s+dare|why\s+would)\s+you\b"
    r"|\b(?:your|their|his|her|the|this|that|such|open|obvious)\s+(?:\w+\s+)?(?:hatred|contempt|disdain|prejudice|"
    r"violence|discrimination|bigotry)\s+(?:for|of|towards?|against|aimed)\b",
    re.IGNORECASE,
)
# A slur said of oneself ("I'm a ...", "we ...", "... like me") or of one's own ("my ...").
SELF_REFERENCE = re.compile(
    r"(?:\b(?:fellow|us|we(?:'re|\s+are)?|i'?m(?:\s+an?)?|ima|i\s+am(?:\s+an?)?|myself(?:\s+an?)?|ourselves|"
    r"(?:feel|look)\s+like\s+an?)|(?:^|[,.!?]\s*)as\s+an?)\s+(?:\w+\s+){0,2}?$"
)
OWN = re.compile(r"\b(?:my|our)\s+(?:\w+\s+){0,2}?$")
SELF_AFTER = re.compile(r"^\W*(?:s\b\W*)?(?:like\s+(?:me|us)|myself|ourselves)\b")


_sentiment = sentiment


def features(text: str) -> tuple[str, dict[str, float]]:
    """The normalised text and the rule cues: profanity, a protected group named,
    negation, quoting or reporting, second person, and VADER's sentiment (which reads
    negation: "not disgusting" is not negative), alone and with a group named."""
    folded = normalise(text)[0]
    group = float(bool(GROUP_TERMS.search(text) or GROUP_TERMS.search(folded) or GROUP_STEMS.search(folded)))
    reporting = float(bool(REPORTING.search(text)))
    sentiment = _sentiment().polarity_scores(text)
    return folded, {
        # On the masked text: the packaged classifier scores "gay" or "Muslim" as profanity.
        "profanity": max(profanity(mask_groups(text)), profanity(mask_groups(folded))),
        "group_term": group,
        "negation": float(bool(NEGATION.search(text))),
        "reporting": reporting,
        "second_person": float(bool(SECOND_PERSON.search(text))),
        "positive": sentiment["pos"],
        "negative": sentiment["neg"],
        "group_positive": group * sentiment["pos"],
        "group_negative": group * sentiment["neg"],
        "reported_negative": reporting * sentiment["neg"],
        "slur": float(bool(SLURS.search(folded))),
        "attributed": float(bool(ATTRIBUTED.search(text))),
        "self_reference": float(reclaimed(text.lower())),
        **{k: v for k, v in negated_valence(folded).items() if k in EXTRA_NAMES},
    }


def negated_valence(folded: str, *, praise_in: str | None = None) -> dict[str, float]:
    """The share of the text's negative and of its positive words (VADER's lexicon) that a
    negator governs: "no Muslim deserves to die" negates its hostility, "they will never be
    any good" its praise. Sentence embeddings barely see the difference. A negator governs
    the rest of its clause ("nobody should ever let a refugee be beaten"). With
    `praise_in`, only praise in that part of the text counts (the clauses about a group)."""
    lexicon: dict[str, float] = _sentiment().lexicon
    counts = {"negative": 0, "positive": 0, "negated_negative": 0, "negated_positive": 0}
    praise_words = set(WORDS.findall(praise_in)) if praise_in is not None else None
    for clause in clauses(folded):
        negated = False
        for word in WORDS.findall(clause):
            if word in NEGATORS or word.endswith("n't"):
                negated = True
                continue
            # Swearing intensifies ("not worth shit"); negating it takes nothing back.
            valence = 0.0 if word in SWEARING else -2.0 if word in DEHUMANISING else lexicon.get(word, 0.0)
            if not valence or (valence > 0 and praise_words is not None and word not in praise_words):
                continue
            kind = "negative" if valence < 0 else "positive"
            counts[kind] += 1
            counts[f"negated_{kind}"] += negated
    return {
        "negative_words": float(counts["negative"]),
        "negated_negative": counts["negated_negative"] / counts["negative"] if counts["negative"] else 0.0,
        "negated_positive": counts["negated_positive"] / counts["positive"] if counts["positive"] else 0.0,
    }


def clauses(folded: str) -> list[str]:
    """The text's clauses, with intensifiers that look like negations removed and
    negating phrases ("far from", "the opposite of") made plain negators."""
    text = NEGATING.sub(" not ", NOT_NEGATING.sub(" ", folded))
    return [part for part in CLAUSE_BREAK.split(text) if part.strip()]


_NEGATORS = "not no never nobody none nothing nor neither cannot without don't dont doesn't isn't aren't wasn't"
NEGATORS = frozenset(f"{_NEGATORS} weren't shouldn't can't won't wouldn't mustn't".split(" "))
# "nothing but vermin", "no better than rats": intensifiers, not negations.
NOT_NEGATING = re.compile(
    r"\b(?:nothing\s+(?:but|more\s+than|less\s+than)|no\s+(?:better|more|different)\s+than|not\s+even|"
    r"nothing\s+short\s+of|no\s+less\s+than|no\s+wonder|no\s+doubt|not\s+only|no\s+matter|"
    r"without\s+(?:a|any)\s+doubt|(?:can't|cannot)\s+(?:believe|help)|(?:can't|cannot|won't|never|don't)\s+stop|"
    r"(?:no\s+one|nobody|nothing|none)\s+else|(?:nothing|nobody|no\s+one)(?=\s+(?:is\s+)?(?:\w+er|worse|more\s+\w+)\s+than)|"
    r"(?:don't|do\s+not|never)\s+forget|(?:not|never)\s+surprised)\b"
)
NEGATING = re.compile(r"\b(?:(?:the\s+)?(?:very\s+)?opposite\s+of|far\s+from|anything\s+but)\b")
CLAUSE_BREAK = re.compile(r"[.!?;,:]+|\b(?:but|because|though|although|however|yet)\b")
WORDS = re.compile(r"[a-z']+")
QUOTED = re.compile(r"[\"“](.+?)[\"”]")


# Long group words found inside run-together words too ("ihatemuslims"), where word
# boundaries were removed to get past a filter.
GROUP_STEMS = re.compile(r"muslim|immigrant|refugee|disabled|lesbian|transgender|homosexual|foreigner|jewish|asylum")


def insulting(text: str) -> bool:
    """Whether the text is abuse: profanity, a slur or a dehumanising word ("you are a
    fucking useless idiot", "your app is garbage"). Abuse is this filter's to judge (it
    blocks the hateful kind and lets a customer's anger through); the injection filter
    leaves abuse that carries no instruction alone, since its classifier, trained on
    attacks that are often rude, reads bare insults as attempts to instruct the bot."""
    folded = normalise(text)[0]
    return bool(
        max(profanity(mask_groups(text)), profanity(mask_groups(folded))) >= INSULT_PROFANITY
        or SLURS.search(folded)
        or any(word in DEHUMANISING for word in WORDS.findall(folded))
    )


def reclaimed(lowered: str) -> bool:
    """Every slur in the text is said of the writer ("I'm a proud ...", "...s like us") or
    of the writer's own ("me and my ...s") in a clause that is not hostile: an in-group,
    reclaimed use ("my ... neighbour is lazy" is not). On the lower-cased text, not the
    de-obfuscated one, which joins "I'm a" into one word."""
    found = False
    for part in clauses(lowered.replace("’", "'")):
        for match in SLURS.finditer(part):
            found = True
            before, after = part[: match.start()], part[match.end() :]
            if SELF_REFERENCE.search(before) or SELF_AFTER.match(after):
                continue
            if not OWN.search(before) or negated_valence(before + after)["negative_words"]:
                return False
    return found


def _names_group(text: str) -> bool:
    folded = normalise(text)[0]
    return bool(
        GROUP_TERMS.search(text) or GROUP_TERMS.search(folded) or SLURS.search(folded) or GROUP_STEMS.search(folded)
    )


def mask_groups(text: str) -> str:
    """The text with every protected-group term replaced by "people": the head then
    judges what is said about a group, not which group is named."""
    return GROUP_STEMS.sub(" people ", GROUP_TERMS.sub("people", text))


def head_vector(text: str, vector: np.ndarray, embed: Callable[[str], np.ndarray] | None) -> np.ndarray:
    """The head's embedding input: the masked text's embedding in the first half when a
    group is named (the second half when none is), so each case has its own weights."""
    named = _names_group(text)
    if named and embed is not None:
        vector = embed(mask_groups(text))
    zeros = np.zeros_like(vector)
    return np.concatenate([vector, zeros] if named else [zeros, vector])


def training_vectors(texts: list[str]) -> np.ndarray:
    from workers.moderation.vectors import embed_texts

    plain = embed_texts(texts, progress=True)
    named = [i for i, text in enumerate(texts) if _names_group(text)]
    masked = embed_texts([mask_groups(texts[i]) for i in named], progress=True)
    halves = np.zeros((len(texts), plain.shape[1] * 2), dtype=np.float32)
    halves[:, plain.shape[1] :] = plain
    for row, i in enumerate(named):
        halves[i, : plain.shape[1]] = masked[row]
        halves[i, plain.shape[1] :] = 0.0
    return halves


def project_examples() -> list[tuple[str, bool]]:
    """The project's own training texts: the written exemplars and the template pairs
    (`hate_contrasts`), as (text, hateful)."""
    from workers.moderation.datasets import read_rows
    from workers.moderation.hate_contrasts import contrasts

    written = [(str(row["text"]), row["label"] == "hateful") for row in read_rows(EXEMPLARS_PATH)]
    return written + [(c.text, c.hateful) for c in contrasts()]


@cache
def default_model() -> LinearTextModel | None:
    return LinearTextModel.load(MODEL_PATH) if MODEL_PATH.exists() else None


class ToxicityFilter:
    name = "toxicity"

    def __init__(self, *, model: LinearTextModel | None = None, bot_output: bool = False) -> None:
        self.model = model if model is not None else default_model()
        self.bot_output = bot_output

    def hate_probability(
        self, text: str, vector: np.ndarray | None, embed: Callable[[str], np.ndarray] | None = None
    ) -> float | None:
        if self.model is None or vector is None:
            return None
        folded, extras = features(text)
        return self.model.probability(folded, head_vector(text, vector, embed), extras)

    def check(
        self, text: str, vector: np.ndarray | None = None, embed: Callable[[str], np.ndarray] | None = None
    ) -> list[Finding]:
        """With `embed`, a hateful-looking text with a quotation is read once more without
        it: hate only quoted in order to condemn it ('posts like "..." get reported') does
        not count."""
        if not text.strip():
            return []
        judged = text
        if embed is not None and vector is not None:
            # A hostile word misspelt to get past a filter ("I haet ...", "Ihate ..."): the
            # repaired text is judged (and embedded) instead.
            fixed = repaired(text)
            if fixed != normalise(text)[0]:
                judged, vector = fixed, embed(fixed)
        probability = self.hate_probability(judged, vector, embed)
        hateful = probability is not None and self.model is not None and probability >= self.model.threshold
        if (
            hateful
            and (not judged.rstrip().endswith("?") or self._hostile(judged))
            and not self._negated(judged)
            and not reclaimed(text.lower())
            and (embed is None or not self._taken_back(judged, embed))
        ):
            return [Finding(self.name, Action.BLOCK, HATEFUL, 0, len(text), score=probability)]
        if self.bot_output:
            profane = max(profanity(text), profanity(normalise(text)[0]))
            if profane >= OUTPUT_PROFANITY:
                return [Finding(self.name, Action.BLOCK, PROFANE_ANSWER, 0, len(text), score=profane)]
        return []

    def _hateful(self, text: str, embed: Callable[[str], np.ndarray]) -> bool:
        probability = self.hate_probability(text, embed(text), embed)
        return probability is not None and self.model is not None and probability >= self.model.threshold

    def _taken_back(self, text: str, embed: Callable[[str], np.ndarray]) -> bool:
        quoted = QUOTED.search(text)
        if quoted:
            # The frame around a quotation is what the writer says; the quotation is reported.
            frame = (text[: quoted.start()] + "that" + text[quoted.end() :]).strip()
            return not self._hateful(frame, embed)
        return False

    @staticmethod
    def _hostile(text: str) -> bool:
        """Some sign of hostility: a negative or dehumanising word, a negated compliment, a
        slur, or profanity. Asked of questions: without one, a question that names a group ("why can't gay
        people time-travel?", "what happened to Jewish people in 1942?") is not hate."""
        folded = normalise(text)[0]
        valence = negated_valence(folded)
        return bool(
            valence["negative_words"]
            or valence["negated_positive"]
            or SLURS.search(folded)
            or profanity(mask_groups(folded)) >= 0.5
        )

    @staticmethod
    def _negated(text: str) -> bool:
        """All its hostile words are negated and no praise of a group is ("no Muslim deserves
        to die", "immigrants are not vermin", "I dislike people in general but have no
        contempt for Jews"): the hostility is taken back, not expressed."""
        folded = normalise(text)[0]
        about_group = " ".join(c for c in clauses(folded) if _names_group(c))
        valence = negated_valence(folded, praise_in=about_group or folded)
        return valence["negative_words"] > 0 and valence["negated_negative"] == 1.0 and valence["negated_positive"] == 0
