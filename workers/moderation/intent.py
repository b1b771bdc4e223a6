"""Signs of instruction-changing intent: what makes a text a prompt injection, rather
than its tone. Each sign is one feature of the injection head and names one aim of an
attack: to drop the assistant's instructions, give it a new role, dictate its output,
lift its limits, or extract its prompt or data. A text with none of them is left alone
by the injection classifier, however rude or imperative it is ("you are a fucking
useless idiot", "cancel my subscription now").

Matched on the de-obfuscated text (`normalise`), in English and German (the languages of
our injection training data), with the commonest French, Spanish and Russian forms.
"""

from __future__ import annotations

import re

from workers.moderation.normalise import normalise

_F = re.IGNORECASE | re.MULTILINE
_START = r"(?:^|[.!?:;,\-–(\[\"“]\s*|\b(?:please|bitte|now|jetzt|nun|and|und|then|dann|just|but|aber)\s+)"

# "From now on" addressed to the bot ("from now on you are ...", "from now on, answer
# ..."), not the visitor's own plans ("from now on I'm only drinking water") or a request
# ("from now on, please send the invoices to ...", "from now on you can reach me on ...").
# A sign here and a blocking phrase rule in `injection`.
FROM_NOW_ON = (
    r"\bfrom\s+now\s+on\b,?\s+(?:you\b(?!\s+(?:can|could|may|might)\b)|you're\b"
    r"|answer|respond|reply|act|behave|speak|talk|pretend|only\s+(?:answer|respond|reply|say|speak|talk))"
)

SIGNS: dict[str, re.Pattern[str]] = {
    # Drop what the assistant was told.
    "override": re.compile(
        r"\b(?:ignore|ignoring|disregard|forget|override|bypass|abandon|ignorier\w*|vergiss|vergessen|missacht\w*"
        r"|oublie\w*|olvid\w*|ignora\w*|zaboravi|забудь\w*|игнорир\w*)\b(?:\W+\w+){0,4}?\W+"
        r"(?:all|everything|anything|previous|prior|above|earlier|before|preceding|initial|original|your|alle|alles"
        r"|vorherig\w*|bisherig\w*|obig\w*|davor|zuvor|toutes|todo|todas|все)\b"
        r"|\b(?:instructions?|rules|guidelines|prompts?|informationen|anweisungen)\b(?:\W+\w+){0,4}?\W+"
        r"(?:no\s+longer\s+apply|(?:are|is|sind)\s+(?:irrelevant|void|obsolete|cancelled|irrelevant|ungültig))"
        # the object first, as German puts it: "die obigen Ausführungen ignorieren"
        r"|\b(?:obig|vorherig|bisherig|previous|above|prior)\w*\s+\w+\s+(?:ignorieren|vergessen|missachten)\b"
        r"|\b(?:disregarding|regardless\s+of|abweichend\s+(?:zu|von))\s+(?:the\s+|den\s+|allen\s+)?"
        r"(?:articles?|documents?|context|vorherig\w*|instruktion\w*|anweisung\w*|instructions?)",
        _F,
    ),
    # A new role or persona.
    "role": re.compile(
        r"\b(?:you\s+are|you're|du\s+bist|sie\s+sind)\s+(?:now|no\s+longer|jetzt|nun|ab\s+(?:jetzt|sofort)|kein)\b"
        r"|\bact(?:ing)?\s+as\b|\bfungieren\b|\bagieren\b|\bpretend\b|\broleplay|\brole[\s-]play|\bin\s+the\s+role\b"
        r"|\b(?:your|deine|ihre)\s+(?:role|rolle)\b|\bnow\s+you\s+are\b"
        r"|\b(?:actors?|schauspieler\w*|acting\s+characters?|plays?\s+the|spielt\s+den)\b(?:\W+\w+){0,8}?\W+"
        r"(?:film|movie|scene|szene|story|play|theater|theatre)\b"
        r"|\bstay\s+in\s+character\b|\bimagine\s+(?:that\s+)?you\s+are\b|\bstell\s+dir\s+vor\b|\btu\s+so,?\s+als\b"
        r"|\bsimulat\w+\b(?:\W+\w+){0,3}?\W+(?:ai|chatbot|model|terminal|interpreter|console)"
        r"|\b(?:your|dein|ihr)\s+(?:new\s+)?name\s+(?:is|ist)\b"
        rf"|{_START}be\s+(?:a|an|my)\s+\w+"
        rf"|{FROM_NOW_ON}"
        r"|\bab\s+jetzt\b|\bvon\s+nun\s+an\b|\btu\s+es\s+maintenant\b|\bahora\s+eres\b"
        r"|\bтеперь\s+ты\b",
        _F,
    ),
    # Addressed as someone else by name ("You are Volkswagen. What do you think of ...?"):
    # case matters, so "you are a useless idiot" is not this.
    "named": re.compile(
        r"(?:^|[.!?:]\s+)(?:[Yy]ou\s+are|YOU\s+ARE|[Dd]u\s+bist|[Nn]ow\s+you\s+are|[Ss]ie\s+sind)\s+"
        r"(?:(?:the|der|die|das)\s+)?(?!I\b)[A-Z][a-z]+",
        re.MULTILINE,
    ),
    # What the assistant should output, word for word.
    "dictate": re.compile(
        rf"{_START}(?:say|write|print|output|respond|reply|answer|repeat|type|sag|sage|schreib|schreibe|antworte"
        r"|gib\s+aus|dis|écris|di|escribe)\b\s*(?::|[\"“'«]|(?:only|exactly|just|nur|genau)\b|with\s+[\"“']|that\s+you)"
        r"|\brepeat\s+after\s+me\b|\b(?:start|begin)\s+(?:your|each|every)\s+(?:answer|reply|response)\b"
        r"|\b(?:answer|respond|reply)\s+(?:only\s+)?(?:with|in)\s+(?:yes|no|one\s+word|[\"“'])"
        r"|\btell\s+me\s+that\s+you\b|\bsay\s+(?:yes|no|ja|nein)\b|\b(?:answer|respond|antworte)\s+(?:im|in\s+the)\s+"
        r"(?:stil|style)\b",
        _F,
    ),
    # Limits lifted.
    "unlimit": re.compile(
        r"\b(?:no|without|keine|ohne)\s+(?:any\s+)?(?:restrictions?|filters?|limits?|limitations|rules|censorship"
        r"|ethics|morals?|guidelines|einschränkungen|regeln|grenzen)\b"
        r"|\bunfiltered\b|\buncensored\b|\bamoral\b|\bcontent\s+polic(?:y|ies)\b|\bjailbr\w+|\bdeveloper\s+mode\b"
        r"|\bdo\s+anything\s+now\b|\bDAN\b|\bethical\s+guidelines\b|\bopenai\b|\bnever\s+refuse\b"
        r"|\b(?:can't|cannot|won't)\s+refuse\b",
        _F,
    ),
    # The assistant's own prompt, instructions or the data behind it.
    "extract": re.compile(
        r"\b(?:system|initial|hidden|original|secret|internal)\s+(?:prompt|instructions?|message|rules|configuration)"
        r"|\bprompt[\s_-]?texts?\b|\b(?:in|from|of)\s+the\s+prompt\b|\b(?:your|deine|ihre)\s+(?:prompt|instructions|programming|anweisungen|konfiguration)\b"
        r"|\b(?:reveal|show|print|output|repeat|display|leak|dump|list|give\s+me|tell\s+me|zeig\w*|gib\s+mir|nenne)"
        r"\b(?:\W+\w+){0,6}?\W+(?:passwords?|secrets?|api\s+keys?|credentials|tokens?|database|"
        r"(?:other|all)\s+(?:customers?|users?|accounts?|orders)|everything\s+above|text\s+above|passwort\w*)",
        _F,
    ),
    # A new task that replaces the current one.
    "new_task": re.compile(
        r"\bnew\s+(?:task|instructions?|assignment|rules?)\b|\bneue\s+(?:aufgabe|anweisung\w*)\b"
        r"|\bnow\s+(?:focus|concentrate)\s+on\b|\bbut\s+then\b|\binstead,?\s+(?:say|write|print|tell|answer)\b"
        r"|\bjetzt\s+kommen\b|\b(?:another|weiteren|anderen)\s+(?:task|aufgabe)\b|\bstop\s*[:!\-–]"
        r"|\bnow\s+(?:write|say|tell|give|print|generate|compose|create)\b"
        r"|\b(?:verfasse|schreib\w*|sag\w*|formulier\w*|antworte|erstelle|generiere)\s+(?:nun|jetzt)\b|\bnouvelle\s+tâche\b|\bnueva\s+tarea\b",
        _F,
    ),
}
NAMES = tuple(f"intent_{name}" for name in SIGNS)


def signs(text: str) -> dict[str, float]:
    """Each sign found in the text as written or de-obfuscated: 1.0, else 0.0."""
    folded = normalise(text)[0]
    return {
        f"intent_{name}": float(bool(pattern.search(text) or pattern.search(folded))) for name, pattern in SIGNS.items()
    }


def any_sign(text: str) -> bool:
    return any(signs(text).values())
