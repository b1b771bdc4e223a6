"""What owners taught the classifier filters (workers.moderation.taught): a classifier
finding on a text like a taught one is allowed, with its reason; rules, other filters and
unrelated texts are not."""

from __future__ import annotations

import numpy as np

from workers.moderation.pipeline import OutputScreen, Policy, screen_question
from workers.moderation.taught import NOTHING_TAUGHT, SIMILAR, TAUGHT_REASON, Taught, compared_text, untaught
from workers.moderation.toxicity import HATEFUL as HATEFUL_REASON
from workers.moderation.vectors import embed_text
from workers.moderation.verdicts import Action, Finding


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def taught_of(name: str, *vectors: np.ndarray) -> Taught:
    return Taught.from_rows((pk, name, vector.astype(np.float32).tobytes()) for pk, vector in enumerate(vectors, 1))


HATEFUL = Finding("toxicity", Action.BLOCK, "hateful", 0, 10, score=0.7)


def test_a_classifier_finding_like_a_taught_text_is_allowed_with_a_reason() -> None:
    taught = taught_of("toxicity", unit(1, 0, 0))
    close = unit(1, 0.2, 0)  # cosine 0.98
    [allowed] = untaught([HATEFUL], taught, "x", close)
    assert allowed.action == Action.ALLOW
    assert allowed.reason == f"{TAUGHT_REASON} (hateful)"
    assert allowed.score == HATEFUL.score


def test_an_unrelated_text_another_filter_and_a_rule_are_not_allowed() -> None:
    taught = taught_of("toxicity", unit(1, 0, 0))
    far = unit(1, 1.2, 0)  # cosine 0.64
    assert float(far @ unit(1, 0, 0)) < SIMILAR
    assert untaught([HATEFUL], taught, "x", far) == [HATEFUL]
    injection = Finding("injection", Action.FLAG, "looks like an injection", 0, 10, score=0.95)
    phrase = Finding("injection", Action.BLOCK, "drop your instructions", 0, 10)  # a rule: no score
    blocked_word = Finding("blocklist", Action.BLOCK, "blocked term 'darn'", 0, 4)
    near = unit(1, 0, 0)
    assert untaught([injection, blocked_word], taught, "x", near) == [injection, blocked_word]
    taught_both = taught_of("injection", unit(1, 0, 0))
    assert untaught([phrase], taught_both, "x", near) == [phrase]
    assert untaught([HATEFUL], NOTHING_TAUGHT, "x", near) == [HATEFUL]
    assert untaught([HATEFUL], taught, "x", None) == [HATEFUL]


def test_hate_is_compared_with_the_groups_masked() -> None:
    """A sentence marked not a problem carries to the same sentence about another group."""
    marked, same_about_others = (
        "Muslims deserve the same respect as anyone.",
        "Gay people deserve the same respect as anyone.",
    )
    taught = taught_of("toxicity", embed_text(compared_text("toxicity", marked)))
    assert float(embed_text(marked) @ embed_text(same_about_others)) < SIMILAR  # unmasked, too far apart
    finding = Finding("toxicity", Action.BLOCK, "hateful", 0, len(same_about_others), score=0.7)
    [after] = untaught([finding], taught, same_about_others, embed_text(same_about_others), embed_text)
    assert after.action == Action.ALLOW
    [without_embed] = untaught([finding], taught, same_about_others, embed_text(same_about_others))
    assert without_embed.action == Action.BLOCK  # the masked text cannot be embedded: nothing allowed


def test_vectors_of_another_size_or_empty_ones_are_not_compared() -> None:
    taught = Taught.from_rows(
        [(1, "toxicity", b""), (2, "toxicity", unit(1, 0).tobytes()), (3, "toxicity", unit(1, 0, 0).tobytes())]
    )
    assert taught.ids == {"toxicity": (3,)}  # the newest example's size is kept
    assert taught.nearest("toxicity", unit(1, 0)) is None
    assert not Taught.from_rows([(1, "pii", unit(1, 0).tobytes())])  # not a taught filter


def test_the_screen_allows_a_paraphrase_of_a_taught_text_and_nothing_else() -> None:
    """Through the worker's screen with real embeddings: a rewording of the taught text
    passes, an unrelated hateful text is still blocked, and a policy without what was
    taught (another organization's) still blocks the rewording."""
    taught_text, reworded, unrelated = "I hate immigrants.", "I really hate immigrants!", "Gay people are vermin."
    policy = Policy.from_bot({"injection": "off", "pii": "off"})
    before = screen_question(reworded, policy, embed_text(reworded), embed_text)
    assert before.action == Action.BLOCK, before.findings
    taught = taught_of("toxicity", embed_text(compared_text("toxicity", taught_text)))
    taught_policy = Policy.from_bot({"injection": "off", "pii": "off"}, taught)

    after = screen_question(reworded, taught_policy, embed_text(reworded), embed_text)
    assert after.action == Action.ALLOW
    assert [f.reason for f in after.findings] == [f"{TAUGHT_REASON} ({HATEFUL_REASON})"]
    assert screen_question(unrelated, taught_policy, embed_text(unrelated), embed_text).action == Action.BLOCK
    assert screen_question(reworded, policy, embed_text(reworded), embed_text).action == Action.BLOCK


def test_the_output_screen_embeds_only_to_check_what_was_taught() -> None:
    taught = taught_of("toxicity", embed_text(compared_text("toxicity", "I hate immigrants.")))
    calls: list[str] = []

    def counting_embed(text: str) -> np.ndarray:
        calls.append(text)
        return embed_text(text)

    screen = OutputScreen(Policy.from_bot({"pii": "off"}, taught), embed=counting_embed)
    assert screen.screen("I really hate immigrants!").action == Action.ALLOW
    assert screen.screen("Your parcel ships tomorrow.").action == Action.ALLOW
    assert "Your parcel ships tomorrow." not in calls
