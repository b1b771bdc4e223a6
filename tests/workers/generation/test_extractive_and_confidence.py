from __future__ import annotations

from workers.generation.confidence import confidence, grounding
from workers.generation.extractive import extractive_answer
from workers.generation.prompt import Passage


def passage(n: int, text: str) -> Passage:
    return Passage(n, n, f"Doc {n}", (), "", text, 0.9)


def test_it_quotes_the_sentences_that_answer_and_cites_them() -> None:
    passages = [
        passage(1, "We love our customers. Refunds reach your card within five working days. Call us any time."),
        passage(2, "Gift cards cannot be refunded."),
    ]
    answer = extractive_answer("How long do refunds take to reach my card?", passages)
    assert "Refunds reach your card within five working days." in answer
    assert answer.split("\n\n")[0].endswith("[1]")
    assert "We love our customers" not in answer


def test_with_no_passages_there_is_nothing_to_quote() -> None:
    assert extractive_answer("anything", []) == ""


def test_grounding_is_the_share_of_answer_words_found_in_the_cited_passages() -> None:
    assert grounding("Refunds take five days", ["Refunds take five working days."]) == 1.0
    assert grounding("Bananas are yellow", ["Refunds take five days."]) == 0.0


def test_confidence_needs_both_a_strong_match_and_a_grounded_answer() -> None:
    grounded = confidence(top_score=0.8, answer="Refunds take five days", cited_texts=["Refunds take five days."])
    ungrounded = confidence(top_score=0.8, answer="Bananas are yellow", cited_texts=["Refunds take five days."])
    weak_match = confidence(top_score=0.1, answer="Refunds take five days", cited_texts=["Refunds take five days."])
    assert grounded > ungrounded and grounded > weak_match
    assert 0.0 <= weak_match <= grounded <= 1.0


def test_table_rows_are_quoted_with_their_headers() -> None:
    from workers.generation.extractive import table_rows_as_sentences

    table = "Plans:\n\n| Plan | Monthly | Users |\n|---|---|---|\n| Solo | $12 | 1 |\n| Team | $29 | 5 |\n\nAfter."
    assert table_rows_as_sentences(table) == (
        "Plans:\n\nPlan: Solo; Monthly: $12; Users: 1.\nPlan: Team; Monthly: $29; Users: 5.\n\nAfter."
    )
    passage = Passage(1, 1, "Plans", ("Pricing",), "", table, 0.9)
    answer = extractive_answer("What does the Team plan cost per month?", [passage])
    assert "Plan: Team; Monthly: $29" in answer and "| Plan |" not in answer


# A small help centre's "Account security" article, two sections, as retrieval hands them
# over: the setup section ranked first because it shares "sign in" and "phone".
SETUP = (
    "Two-step verification adds a second check when you sign in, so a stolen password is not enough."
    " To turn it on:\n\n"
    "1. Open Settings > Security on the web.\n"
    "2. Choose **Set up two-step verification**.\n"
    "3. Scan the QR code with an authenticator app on your phone.\n"
    "4. Enter the six-digit code the app shows to confirm.\n\n"
    "We then show ten backup codes. Save them somewhere safe: each code works once."
)
LOST_PHONE = (
    "On the sign-in page, choose **Use a backup code** and enter one of the codes you saved when you set up"
    " two-step verification. Once you are in, open Settings > Security to remove the old device and add your"
    " new one.\n\n"
    "If you no longer have your backup codes either, contact support from the sign-in page using the email"
    " address on your account. We confirm your identity and switch off two-step verification within one"
    " working day."
)


def section(n: int, heading: str, text: str, score: float) -> Passage:
    return Passage(n, 7, "Account security", ("Two-step verification", heading), f"#{n}", text, score)


def test_it_answers_from_the_section_that_matches_the_question_not_the_first_ranked() -> None:
    # Regression: "I lost my phone" was answered with the setup steps of the section above.
    passages = [
        section(1, "Turning on two-step verification", SETUP, 0.81),
        section(2, "I lost my phone, how do I sign in?", LOST_PHONE, 0.78),
    ]
    answer = extractive_answer("I lost my phone, how do I sign in?", passages)
    assert answer.startswith("On the sign-in page, choose **Use a backup code**")
    assert answer.endswith("[2]") and "[1]" not in answer
    assert "Scan the QR code" not in answer and "3." not in answer


def test_steps_are_quoted_as_a_list_with_the_sentence_that_introduces_them() -> None:
    passages = [section(1, "Turning on two-step verification", SETUP, 0.8), section(2, "Lost phone", LOST_PHONE, 0.6)]
    answer = extractive_answer("How do I turn on two-step verification?", passages)
    assert "To turn it on:\n\n1. Open Settings > Security on the web.\n2. Choose **Set up" in answer
    assert "\n3. Scan the QR code with an authenticator app on your phone.\n4. Enter the six-digit code" in answer


def test_bullet_items_stay_one_a_line_instead_of_running_together() -> None:
    # Regression: a bullet list was quoted as one line, "- Visa - PayPal - Bank transfer".
    text = (
        "We accept these payment methods:\n\n- Visa and Mastercard\n- PayPal\n- Bank transfer, for annual plans only"
        "\n\nInvoices are emailed to the account owner on the first of each month."
    )
    answer = extractive_answer("Which payment methods do you accept?", [Passage(1, 1, "Billing", (), "", text, 0.9)])
    assert answer.startswith(
        "We accept these payment methods:\n\n- Visa and Mastercard\n- PayPal\n- Bank transfer, for annual plans only"
    )
    assert " - " not in answer


def test_a_numbered_step_is_never_spliced_into_another_list() -> None:
    # Regression: "3. Enter the code we email you" from the password steps was quoted
    # after the email steps, its stray number and all.
    email = Passage(
        1,
        3,
        "Your profile",
        ("Changing your email address",),
        "#changing-your-email-address",
        "To change the email address you sign in with:\n\n1. Open Profile.\n2. Choose Edit next to Email address."
        "\n3. Type the new address and press Save.\n\nWe send a confirmation link to the new address.",
        0.7,
    )
    password = Passage(
        2,
        3,
        "Your profile",
        ("Resetting your password",),
        "#resetting-your-password",
        "If you forgot your password:\n\n1. Choose Forgot password on the sign-in page.\n2. Enter your email address."
        "\n3. Open the link we email you.\n4. Choose a new password.\n\nFor a new address, see Changing your email.",
        0.72,
    )
    answer = extractive_answer("How do I change my email address?", [password, email])
    numbered = [line for line in answer.splitlines() if line[:1].isdigit()]
    assert numbered[:3] == [
        "1. Open Profile.",
        "2. Choose Edit next to Email address.",
        "3. Type the new address and press Save.",
    ]
    assert "Open the link we email you" not in answer and "Enter your email address" not in answer


def test_within_one_passage_only_the_list_that_answers_is_quoted() -> None:
    text = (
        "To export your data:\n\n1. Open Settings > Data.\n2. Choose Export.\n3. Download the file we email you."
        "\n\nTo delete your account:\n\n1. Open Settings > Account.\n2. Choose Delete account."
        "\n3. Confirm with your password."
    )
    answer = extractive_answer("How do I delete my account?", [Passage(1, 1, "Privacy", (), "", text, 0.9)])
    assert answer == (
        "To delete your account:\n\n1. Open Settings > Account.\n2. Choose Delete account.\n"
        "3. Confirm with your password. [1]"
    )
