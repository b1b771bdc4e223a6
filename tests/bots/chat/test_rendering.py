"""Transcripts render the widget's Markdown subset, escaped, links http(s) only."""

from __future__ import annotations

from bots.chat.rendering import citation_label, render_markdown

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
