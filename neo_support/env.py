"""Typed readers for settings that come from the environment.

Every reader names the variable in its error, so a malformed value stops
start-up with a message an operator can act on. Pure Python: no Django import,
so it is usable (and testable) before settings exist.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

Environ = Mapping[str, str]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """A setting from the environment is missing or malformed."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name


def _raw(name: str, environ: Environ | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str, *, environ: Environ | None = None) -> str:
    value = _raw(name, environ)
    return default if value is None else value


def env_bool(name: str, default: bool, *, environ: Environ | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(name, f"expected one of 1/0, true/false, yes/no, on/off, got {value!r}")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Environ | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(name, f"must be at most {maximum}, got {number}")
    return number


def env_choice(name: str, default: str, choices: Sequence[str], *, environ: Environ | None = None) -> str:
    value = env_str(name, default, environ=environ)
    if value not in choices:
        raise ConfigError(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def env_matching(name: str, default: str, pattern: str, hint: str, *, environ: Environ | None = None) -> str:
    """A string that must fully match `pattern`; `hint` says in words what is accepted."""
    value = env_str(name, default, environ=environ)
    if not re.fullmatch(pattern, value):
        raise ConfigError(name, f"expected {hint}, got {value!r}")
    return value


def env_rate(name: str, default: str, *, environ: Environ | None = None) -> str:
    """Rate limits in the `limits` notation, e.g. `10/minute;100/hour`."""
    from limits import parse_many

    value = env_str(name, default, environ=environ)
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(name, f"expected limits like '10/minute' or '10/minute;100/hour', got {value!r}") from None
    return value


def env_list(name: str, default: Sequence[str] = (), *, environ: Environ | None = None) -> list[str]:
    """A comma-separated list; blanks between commas are dropped."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(
    name: str,
    default: str | None,
    *,
    schemes: Sequence[str],
    environ: Environ | None = None,
) -> str | None:
    value = _raw(name, environ)
    if value is None:
        return default
    check_url(name, value, schemes=schemes)
    return value


def check_url(name: str, value: str, *, schemes: Sequence[str]) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as error:
        raise ConfigError(name, f"not a valid URL ({error}): {value!r}") from None
    if parts.scheme not in schemes:
        raise ConfigError(name, f"URL scheme must be one of {', '.join(schemes)}, got {value!r}")
    if not parts.netloc and parts.scheme not in {"sqlite", "unix", "memory"}:
        raise ConfigError(name, f"URL has no host: {value!r}")


def env_origins(name: str, *, environ: Environ | None = None) -> list[str]:
    """A comma-separated list of origins such as https://support.example.com."""
    origins = env_list(name, environ=environ)
    for origin in origins:
        check_url(name, origin, schemes=("http", "https"))
    return origins


def env_secret(name: str, *, environ: Environ | None = None) -> str | None:
    """A secret from `NAME`, or read from the file named by `NAME_FILE` (Docker secrets)."""
    direct = _raw(name, environ)
    file_name = _raw(f"{name}_FILE", environ)
    if direct is not None and file_name is not None:
        raise ConfigError(name, f"set either {name} or {name}_FILE, not both")
    if file_name is None:
        return direct
    try:
        secret = Path(file_name).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"{name}_FILE", f"cannot read {file_name}: {error.strerror}") from None
    if not secret:
        raise ConfigError(f"{name}_FILE", f"{file_name} is empty")
    return secret


def env_path(name: str, default: Path, *, environ: Environ | None = None) -> Path:
    value = _raw(name, environ)
    return default if value is None else Path(value).expanduser().resolve()
