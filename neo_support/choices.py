"""Django's choices enums, with the types mypy cannot read from Django itself.

Django ships no type information here, so `models.TextChoices` is Any to mypy, and a
member written `OPEN = "open", "Open"` would be typed as the tuple it is spelled with
rather than the `str` (or `int`) enum member Django's metaclass makes of it. Under
TYPE_CHECKING these are `str`/`int` enums with the attributes Django's add (`label`
on a member; `choices`, `values`, `labels`, `names` on the class); at run time they
are Django's classes, unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import enum

    class _ChoicesType(enum.EnumMeta):
        @property
        def choices(cls) -> list[tuple[Any, str]]: ...
        @property
        def values(cls) -> list[Any]: ...
        @property
        def labels(cls) -> list[str]: ...
        @property
        def names(cls) -> list[str]: ...

    class TextChoices(enum.StrEnum, metaclass=_ChoicesType):
        @property
        def label(self) -> str: ...

    class IntegerChoices(enum.IntEnum, metaclass=_ChoicesType):
        @property
        def label(self) -> str: ...

else:
    from django.db.models import IntegerChoices, TextChoices

__all__ = ["IntegerChoices", "TextChoices"]
