"""What every loader returns: a document as a list of text blocks under headings.

Pure Python, no Django. Chunking (retrieval/chunking.py) takes these blocks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Runs one step of parsing named "module:function" with its arguments: `call_here` in this
# process, or `IsolatedRunner.call` in the parser child (retrieval/loaders/isolation.py).
Call = Callable[..., Any]
# Told (pages read, pages in all) as a long document is read.
ProgressCallback = Callable[[int, int], None]


class LoaderError(Exception):
    """A document cannot be loaded. The message is shown to the person who uploaded it,
    so it says what is wrong in their terms ("The PDF is encrypted", not a stack trace).

    `retryable` is True when the same content might load on another try (the parser was
    stopped for taking too long, or killed from outside); by default the content itself
    is refused and a retry would fail the same way.
    """

    def __init__(self, message: str = "", *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Block:
    """One paragraph, list, table (as Markdown) or code block of a document.

    `heading_path` holds the headings above the block, outermost first (the
    document title is not repeated in it). `location` says where the block is:
    "page 3", "#pricing" (an anchor), "row 12", or "" when there is nothing better.
    """

    text: str
    heading_path: tuple[str, ...] = ()
    location: str = ""


@dataclass(frozen=True)
class LoadedDocument:
    title: str
    blocks: list[Block]
    content_type: str
    source_url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(block.text for block in self.blocks)


def call_here(target: str, *args: Any, **kwargs: Any) -> Any:
    """`target(*args, **kwargs)`, `target` a "module:function" name, in this process."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args, **kwargs)
