"""Transcripts render the widget's Markdown subset, escaped, links http(s) only."""

from __future__ import annotations

from bots.chat.rendering import citation_label, citation_link, render_markdown

CITED = [{"number": 1, "title": "Account help", "location": "#i-lost-my-phone-how-do-i-sign-in", "url": ""}]


def test_bold_lists_and_paragraphs_render_as_html() -> None:
    html = render_markdown("You get a **full refund**.\n\n- Open *Orders*\n- Press `Return`\n\n1. One\n2. Two")
    assert html == (
        "<p>You get a <strong>full refund</strong>.</p>"
        "<ul><li>Open <em>Orders</em></li><li>Press <code>Return</code></li></ul>"
        "<ol><li>One</li><li>Two</li></ol>"
    )


def test_html_and_script_links_are_escaped_not_rendered() -> None:
    html = render_markdown('<script>alert(1)</script> [click](javascript:alert(1)) <b onclick="x">b</b>')
    assert "<script>" not in html and "<b " not in html and "href" not in html
    assert "&lt;script&gt;" in html


def test_http_links_open_in_a_new_tab() -> None:
    html = render_markdown("See [the guide](https://example.com/a?b=1&c=2).")
    assert '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer nofollow">' in html


def test_citation_markers_show_the_heading_in_words_and_link_when_there_is_a_url() -> None:
    assert citation_label(CITED[0]) == "Account help — I lost my phone how do i sign in"
    plain = render_markdown("Use a backup code [1].", CITED)
    assert '<span class="cite" title="Account help — I lost my phone how do i sign in">1</span>' in plain
    linked = render_markdown("Use a backup code [1].", [{**CITED[0], "url": "https://help.example.com/account"}])
    assert '<a class="cite" href="https://help.example.com/account"' in linked
    assert render_markdown("Unknown [7].") == '<p>Unknown <span class="cite">7</span>.</p>'


def test_a_known_heading_is_shown_as_written_and_a_title_anchor_is_not_repeated() -> None:
    assert citation_label({**CITED[0], "heading": "I lost my phone, how do I sign in?"}) == (
        "Account help — I lost my phone, how do I sign in?"
    )
    assert citation_label({"title": "Account help", "location": "#account-help"}) == "Account help"
    assert citation_label({"title": "Manual", "location": "page 3"}) == "Manual — page 3"


def test_a_citation_links_to_its_page_else_the_public_help_centre_with_the_heading_anchor() -> None:
    page, centre = "https://example.com/account", "https://help.example.com/"
    assert citation_link(source_url=page, public_base_url=centre, location="#sign-in") == f"{page}#sign-in"
    assert citation_link(source_url=page, public_base_url="", location="page 2") == page
    assert citation_link(source_url="", public_base_url=centre, location="#refunds") == f"{centre}#refunds"
    assert citation_link(source_url="", public_base_url=centre, location="row 4") == centre
    assert citation_link(source_url="", public_base_url="", location="#refunds") == ""
    # Only web addresses; an address with its own fragment keeps it; anchors are encoded.
    assert citation_link(source_url="javascript:alert(1)", public_base_url="", location="") == ""
    assert citation_link(source_url="https://app.example.com/#/help", public_base_url="", location="#a") == (
        "https://app.example.com/#/help"
    )
    assert citation_link(source_url="", public_base_url=centre, location='#a"b c') == f"{centre}#a%22b%20c"
