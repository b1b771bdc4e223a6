"""The IMAP mailboxes polled for tickets (`NEO_IMAP_MAILBOXES`), read and checked at
start-up.

Pure Python, no Django import: settings.py builds the list with `env_imap_mailboxes`,
so a malformed entry stops start-up with a `ConfigError` naming the variable and the
entry, never at the first poll.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neo_support.env import ConfigError, Environ, env_str

TLS_MODES = ("ssl", "starttls", "none")
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
KEYS = {"bot", "host", "port", "username", "password", "password_file", "folder", "tls", "processed_folder"}


@dataclass(frozen=True)
class ImapMailbox:
    """One mailbox whose unseen mail becomes tickets of `bot` (a bot's public key).

    Checked on construction (ValueError), so a mailbox built in code is held to the
    same rules as one from the environment: plain-text IMAP only to loopback.
    """

    bot: str
    host: str
    username: str
    password: str = field(repr=False)
    port: int = 0  # 0: the usual port for `tls` (993 for ssl, 143 otherwise)
    folder: str = "INBOX"
    tls: str = "ssl"
    processed_folder: str = ""

    def __post_init__(self) -> None:
        for name in ("bot", "host", "username", "password"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f'"{name}" must be a non-empty string')
        if self.tls not in TLS_MODES:
            raise ValueError(f'"tls" must be one of {", ".join(TLS_MODES)}, got {self.tls!r}')
        if self.port == 0:
            object.__setattr__(self, "port", DEFAULT_PORTS[self.tls])
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f'"port" must be a whole number from 1 to 65535, got {self.port!r}')
        if self.tls == "none" and not host_is_loopback(self.host):
            raise ValueError(f'"tls": "none" is only allowed for a loopback host, not {self.host!r}')
        for name in ("folder", "processed_folder"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.isascii() or not value.isprintable():
                # Non-ASCII folder names travel in IMAP's modified UTF-7; ask for that spelling.
                raise ValueError(f'"{name}" must be printable ASCII (the server\'s own name for the folder)')
        if not self.folder.strip():
            raise ValueError('"folder" must not be empty')
        if self.processed_folder == self.folder:
            raise ValueError('"processed_folder" must differ from "folder"')

    @property
    def label(self) -> str:
        """How logs and task results name this mailbox (no password)."""
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"

    @property
    def key(self) -> str:
        """Identifies the mailbox, for the lock that keeps two polls of it apart."""
        return f"{self.bot}:{self.label}"


def host_is_loopback(host: str) -> bool:
    """Only a literal loopback address or `localhost`: a name is not resolved, since
    DNS could point it anywhere."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mailboxes_parse(text: str, *, name: str) -> list[ImapMailbox]:
    """`text` is a JSON list of mailbox objects; `name` is the variable it came from."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        # The value holds passwords: say where it broke, never echo it.
        raise ConfigError(name, f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    if not isinstance(entries, list):
        raise ConfigError(name, "expected a JSON list of mailboxes")
    mailboxes = [_mailbox(entry, index, name) for index, entry in enumerate(entries)]
    seen: set[str] = set()
    for mailbox in mailboxes:
        if mailbox.key in seen:
            raise ConfigError(name, f"mailbox {mailbox.label} for bot {mailbox.bot} is listed twice")
        seen.add(mailbox.key)
    return mailboxes


def _mailbox(entry: Any, index: int, name: str) -> ImapMailbox:
    where = f"mailbox {index}"
    if not isinstance(entry, Mapping):
        raise ConfigError(name, f"{where}: expected an object")
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise ConfigError(name, f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(KEYS))}")
    if isinstance(entry.get("host"), str):
        where += f" ({entry.get('username', '?')}@{entry['host']})"
    for required in ("bot", "host", "username"):
        if required not in entry:
            raise ConfigError(name, f'{where}: "{required}" is required')
    if ("password" in entry) == ("password_file" in entry):
        raise ConfigError(name, f'{where}: give exactly one of "password" and "password_file"')
    password: Any = entry.get("password")
    if "password_file" in entry:
        password = _read_password(entry["password_file"], where=where, name=name)
    try:
        return ImapMailbox(
            bot=entry["bot"],
            host=entry["host"],
            username=entry["username"],
            password=password,
            port=entry.get("port", 0),
            folder=entry.get("folder", "INBOX"),
            tls=entry.get("tls", "ssl"),
            processed_folder=entry.get("processed_folder") or "",
        )
    except ValueError as error:
        raise ConfigError(name, f"{where}: {error}") from None


def _read_password(path: Any, *, where: str, name: str) -> str:
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(name, f'{where}: "password_file" must be a path')
    try:
        password = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(name, f"{where}: cannot read password_file {path}: {error.strerror}") from None
    if not password:
        raise ConfigError(name, f"{where}: password_file {path} is empty")
    return password


def env_imap_mailboxes(name: str = "NEO_IMAP_MAILBOXES", *, environ: Environ | None = None) -> list[ImapMailbox]:
    """The mailboxes from `NAME` (JSON), or from the file named by `NAME_FILE`."""
    direct = env_str(name, "", environ=environ)
    file_name = env_str(f"{name}_FILE", "", environ=environ)
    if direct and file_name:
        raise ConfigError(name, f"set either {name} or {name}_FILE, not both")
    if not file_name:
        return mailboxes_parse(direct, name=name) if direct else []
    try:
        text = Path(file_name).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{name}_FILE", f"cannot read {file_name}: {error.strerror}") from None
    return mailboxes_parse(text, name=f"{name}_FILE")
