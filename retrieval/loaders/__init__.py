"""Document loaders: uploaded files, typed-in text and web pages to `LoadedDocument`.

Pure Python, no Django: bytes or a URL in, a title and text blocks out. Every failure the person
importing the document should see is a `LoaderError` whose message says what is wrong.
"""

from __future__ import annotations

from .base import Block, LoadedDocument, LoaderError
from .files import SUPPORTED_EXTENSIONS, load_bytes, load_text
from .web import PageError, crawl_site, fetch_url

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Block",
    "LoadedDocument",
    "LoaderError",
    "PageError",
    "crawl_site",
    "fetch_url",
    "load_bytes",
    "load_text",
]
