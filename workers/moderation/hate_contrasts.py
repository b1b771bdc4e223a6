"""Minimal pairs the project writes from templates, for the hate head: a hateful statement
beside the same words made not hateful by the phenomena a sentence embedding barely sees:

- negation whose scope is long ("nobody should let a {group} be beaten");
- counter-speech that reports, attributes or condemns the hate without quotation marks
  ("your contempt for {group} is embarrassing", "calling {group} vermin is abuse"),
  against endorsements of it ("you're right, {group} are vermin");
- slurs used of oneself or one's own (reclaimed), against slurs aimed at others;
- slur homonyms in their everyday sense (a bitch at a dog show, a fag in the UK);
- neutral and positive statements about a group, and abuse of targets that are not a
  protected group (professions, objects).

Every combination is built, then a fixed-seed sample of each template group is kept, so
training is reproducible. None of these came from an evaluation set.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

SEED = 22
PER_GROUP = 70  # texts kept per template group

# (plural, singular, adjective)
_GROUPS = (
    ("women", "woman", "female"),
    ("Muslims", "Muslim", "Muslim"),
    ("immigrants", "immigrant", "immigrant"),
    ("gay people", "gay person", "gay"),
    ("trans people", "trans person", "trans"),
    ("Black people", "Black person", "Black"),
    ("Jews", "Jew", "Jewish"),
    ("disabled people", "disabled person", "disabled"),
    ("refugees", "refugee", "refugee"),
    ("Hindus", "Hindu", "Hindu"),
    ("lesbians", "lesbian", "lesbian"),
    ("Mexicans", "Mexican", "Mexican"),
    ("Roma", "Roma person", "Roma"),
    ("old people", "old person", "elderly"),
)
_HOSTILE_ADJECTIVES = ("stupid", "lazy", "dangerous", "disgusting", "worthless", "evil", "dirty", "pathetic")
_HOSTILE_NOUNS = ("vermin", "trash", "animals", "parasites", "scum", "a disease", "rats")
_HARMS = ("beaten", "attacked", "harassed", "hurt", "locked up", "deported", "killed", "abused")
_HARM_VERBS = ("beat", "attack", "harass", "hurt", "kill", "humiliate", "threaten")
_NOT = ("are not", "aren't", "are far from", "are the opposite of", "are anything but")

_NEGATED = (
    "Not a single {s} should ever have to be {harm}.",
    "Nobody should ever {verb} a {s} for who they are.",
    "We will never let {p} be {harm} in this town.",
    "We cannot stay silent while {p} are being {harm}.",
    "I have never hated {p} and I never will.",
    "There is no reason at all to despise {p}.",
    "I would never vote for someone who calls {p} {noun}.",
    "I'm grumpy with everyone, but I have no hatred for {p} in particular.",
    "It is simply not true that {p} are {adj}.",
    "Not one {s} I know deserves to be called {adj}.",
)
_NEGATED_PAIRS = (
    "Every single {s} should be {harm}.",
    "Someone should {verb} every {s} they meet.",
    "I hate {p} and I always will.",
    "There are good reasons to despise {p}.",
    "{P} are {noun}, plain and simple.",
    "I'm grumpy with everyone, but I have a special hatred for {p}.",
    "It is simply true that {p} are {adj}.",
    "Every {s} I know is {adj}.",
)
_NEGATED_ADJECTIVES = ("{P} {neg} {adj}.", "Honestly, {p} {neg} {adj} at all.")
_ADJECTIVE_PAIRS = ("{P} are {adj}.", "Honestly, {p} are so {adj}.")

_COUNTER = (
    "Your {attitude} for {p} is embarrassing.",
    "Your constant {attitude} towards {p} has to end.",
    "You honestly think {p} are {adj}? That says a lot about you.",
    "If you keep calling {p} {noun}, don't be surprised when you get banned.",
    "Calling {p} {noun} is not an opinion, it is abuse.",
    "Telling {p} that they are {adj} is plain bullying.",
    "Threatening to {verb} {p} can get you arrested.",
    "We all need to stand up to the {attitude} aimed at {p}.",
    "People who say {p} are {adj} should educate themselves.",
    "{P} might mean nothing to you, but nobody cares what you think.",
    "Saying that {p} should be {harm} is vile.",
    "Anyone who wants {p} {harm} is the problem here, not them.",
    "Posts claiming {p} are {noun} get reported, and rightly so.",
)
_COUNTER_PAIRS = (
    "You're right, {p} are {adj}.",
    "I agree with you, {p} are {noun}.",
    "Call {p} what they are: {noun}.",
    "{P} should be {harm}, and I'll say it again.",
    "Let's be honest, {p} are {noun}.",
    "I think {p} are {adj} and I'm not sorry.",
)
_ATTITUDES = ("hatred", "contempt", "disgust", "disdain", "prejudice")

# In-group uses of slurs that are reclaimed, and the same slurs aimed at others.
_RECLAIMABLE = ("nigga", "queer", "fag", "faggot", "dyke", "bitch")
_RECLAIMED = (
    "Me and my {slur}s are heading out tonight.",
    "I'm a proud {slur} and I always will be.",
    "We {slur}s have to stick together.",
    "Love you, my {slur}, see you tomorrow.",
    "As a {slur} myself, I found that hilarious.",
    "Happy birthday to my favourite {slur}!",
    "Us {slur}s know how to throw a party.",
    "Yeah I'm a {slur}, so what?",
    "Big shout out to all my {slur}s out there.",
    "I call myself a {slur} and that's my choice.",
)
_AIMED = (
    "Those {slur}s should go back where they came from.",
    "I can't stand {slur}s like you.",
    "You're nothing but a filthy {slur}.",
    "Get these {slur}s out of our neighbourhood.",
    "Never trust a {slur}.",
    "Shut up, {slur}.",
)
# Words that are slurs in one sense and everyday words in another.
_HOMONYMS = (
    "Our {bitch} had a litter of five puppies last week.",
    "The breeder showed us a lovely spaniel bitch and two dogs.",
    "Can I bum a fag off you? I left my cigarettes at home.",
    "He rolled a fag and smoked it outside the pub.",
    "Grandma served faggots with peas and onion gravy.",
    "The butcher sells faggots and sausages on Fridays.",
    "There was something queer about the way the door was left open.",
    "The old dyke kept the sea out of the village for centuries.",
    "The farmers repaired the dyke after the flood.",
    "Grab a hoe and help me weed the vegetable patch.",
    "The coon hound followed the raccoon up the tree.",
    "Retard the ignition timing a few degrees to stop the knocking.",
    "A flame retardant coating slows the fire down.",
    "That's a queer thing to say, but I know what you mean.",
    "The vet checked the bitch and said the pups are healthy.",
    "He went out for a fag and came back ten minutes later.",
)
_IDENTITY_NEUTRAL = (
    "My new flatmates are two {p} from university.",
    "There aren't many {p} living on our street.",
    "Our company has never had a {a} director.",
    "I read a book about the history of {p}.",
    "How many {p} live in this city?",
    "The {a} community centre opens at nine.",
)
_IDENTITY_POSITIVE = (
    "I'd love to go on a date with a {s}.",
    "Hiring a {s} as our manager was the smartest move we made.",
    "We could learn a lot from {p}.",
    "{A} voices deserve to be heard.",
    "{P} deserve seats in parliament.",
    "{P} are some of the kindest people I know.",
    "My best friend is a {s} and she's wonderful.",
)
_IDENTITY_PAIRS = (
    "I'd never go on a date with a {s}, they disgust me.",
    "Hiring a {s} was the dumbest move we ever made.",
    "{A} voices don't deserve to be heard.",
    "{P} don't deserve seats in parliament.",
    "{P} are the worst people I know.",
    "There are too many {p} on our street, it's disgusting.",
)
_NON_PROTECTED = ("bankers", "estate agents", "lawyers", "politicians", "landlords", "referees", "tax inspectors")
_NON_PROTECTED_ABUSE = (
    "{q} are {noun}.",
    "I can't stand {q}, they're {adj}.",
    "Honestly, {q} are the most {adj} people alive.",
)


@dataclass(frozen=True)
class Contrast:
    text: str
    hateful: bool
    kind: str


def _fill(templates: tuple[str, ...], **parts: tuple[str, ...]) -> list[str]:
    names = list(parts)
    texts = set()
    for template in templates:
        used = [n for n in names if "{" + n + "}" in template]
        for values in itertools.product(*(parts[n] for n in used)):
            texts.add(template.format(**dict(zip(used, values, strict=True))))
    return sorted(texts)


def _grouped(templates: tuple[str, ...], **parts: tuple[str, ...]) -> list[str]:
    texts = []
    for plural, singular, adjective in _GROUPS:
        for text in _fill(templates, **parts):
            filled = text.replace("{p}", plural).replace("{s}", singular).replace("{a}", adjective)
            filled = filled.replace("{P}", plural[0].upper() + plural[1:]).replace("{A}", adjective.capitalize())
            texts.append(filled)
    return texts


def _sample(texts: list[str], rng: random.Random, size: int = PER_GROUP) -> list[str]:
    unique = sorted(set(texts))
    return rng.sample(unique, min(size, len(unique)))


def contrasts() -> list[Contrast]:
    """The pairs: about 1,000 texts, half of them hateful."""
    rng = random.Random(SEED)
    keep = {"p": ("{p}",), "s": ("{s}",), "a": ("{a}",), "P": ("{P}",), "A": ("{A}",)}
    parts = {
        "adj": _HOSTILE_ADJECTIVES,
        "noun": _HOSTILE_NOUNS,
        "harm": _HARMS,
        "verb": _HARM_VERBS,
        "attitude": _ATTITUDES,
        "neg": _NOT,
        **keep,
    }
    abuse = _fill(_NON_PROTECTED_ABUSE, q=_NON_PROTECTED, adj=_HOSTILE_ADJECTIVES, noun=_HOSTILE_NOUNS)
    groups: list[tuple[str, bool, list[str], int]] = [
        ("negated_hate", False, _grouped(_NEGATED, **parts), PER_GROUP),
        ("negated_hate", False, _grouped(_NEGATED_ADJECTIVES, **parts), PER_GROUP),
        ("derogation", True, _grouped(_NEGATED_PAIRS, **parts), PER_GROUP),
        ("derogation", True, _grouped(_ADJECTIVE_PAIRS, **parts), PER_GROUP),
        ("counter_speech", False, _grouped(_COUNTER, **parts), 2 * PER_GROUP),
        ("endorsement", True, _grouped(_COUNTER_PAIRS, **parts), PER_GROUP),
        ("reclaimed_slur", False, _fill(_RECLAIMED, slur=_RECLAIMABLE), PER_GROUP),
        ("slur", True, _fill(_AIMED, slur=_RECLAIMABLE), PER_GROUP),
        ("slur_homonym", False, _fill(_HOMONYMS, bitch=("bitch", "spaniel bitch", "labrador bitch")), PER_GROUP),
        ("neutral_identity", False, _grouped(_IDENTITY_NEUTRAL, **parts), PER_GROUP),
        ("positive_identity", False, _grouped(_IDENTITY_POSITIVE, **parts), PER_GROUP),
        ("identity_derogation", True, _grouped(_IDENTITY_PAIRS, **parts), PER_GROUP),
        ("abuse_nonprotected", False, abuse, PER_GROUP),
    ]
    examples = []
    for kind, hateful, texts, size in groups:
        for text in _sample(texts, rng, size):
            examples.append(Contrast(text[0].upper() + text[1:], hateful, kind))
    unique: dict[str, Contrast] = {}
    for example in examples:
        unique.setdefault(example.text, example)
    return list(unique.values())
