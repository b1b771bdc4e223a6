"""Template filters for conversation text: `{{ message.text|chat_markdown:message.citations }}`
renders the widget's safe Markdown subset (bots.chat.rendering); `citation_label` shows a
citation in words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from bots.chat.rendering import citation_label as label_of
from bots.chat.rendering import render_markdown
from bots.chat.selectors import agent_display_name

register = template.Library()


@register.filter
def chat_markdown(text: str, citations: Sequence[Mapping[str, Any]] | None = None) -> SafeString:
    # render_markdown escapes everything it does not build itself.
    return mark_safe(render_markdown(str(text or ""), citations if isinstance(citations, list) else ()))


@register.filter
def citation_label(citation: Mapping[str, Any]) -> str:
    return label_of(citation) if isinstance(citation, Mapping) else ""


@register.filter
def agent_name(user: Any) -> str:
    """An agent as the visitor sees them: full name, else username (never an email address)."""
    return agent_display_name(user)
