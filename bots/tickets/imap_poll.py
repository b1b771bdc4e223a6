"""Fetch unseen mail from an IMAP mailbox into tickets (stdlib imaplib).

Mail is marked seen (or moved to the processed folder) only after
`ticket_receive_email` stored it, so a crash never loses an email: whatever was not
stored stays unseen and is fetched again by the next poll, and fetching an email
twice is harmless because the same Message-ID is stored once.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from django.conf import settings

from bots.selectors import bot_get_by_public_key
from bots.tickets.imap_config import ImapMailbox, host_is_loopback
from bots.tickets.services import ticket_receive_email

logger = logging.getLogger(__name__)

STORED = {"created", "threaded", "reopened", "follow_up"}
# Long enough for a full batch; should a poll outlive it, the next one only finds
# duplicates, which are harmless.
LOCK_SECONDS = 600
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"UID (\d+)")
_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


class MailboxError(Exception):
    """The mailbox cannot be polled: connection, TLS, login or folder trouble."""


@dataclass
class PollResult:
    """What one poll did: emails fetched, and how each ended."""

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    failed: int = 0


def mailbox_poll(config: ImapMailbox, *, limit: int = 200) -> PollResult:
    """Store up to `limit` unseen emails of `config`'s folder as tickets of its bot.

    An email is marked \\Seen (or moved to `processed_folder`) once it was stored,
    found to be a duplicate, or ignored as machine-sent. One that fails (too large,
    a parse error, any exception while storing) is logged, counted as failed and left
    unseen for the next poll; the others go on. Raises MailboxError when the mailbox
    cannot be reached, logged into or opened.
    """
    bot = bot_get_by_public_key(public_key=config.bot)
    if bot is None:
        raise MailboxError(f"{config.label}: no bot has the public key {config.bot!r}")
    result = PollResult()
    with _session(config) as imap:
        uids = _unseen(imap, config)[:limit]
        sizes = _sizes(imap, uids)
        for uid in uids:
            if sizes.get(uid, 0) > settings.NEO_EMAIL_MAX_BYTES:
                logger.warning(
                    "IMAP %s: email UID %s is %d bytes, over NEO_EMAIL_MAX_BYTES; left unseen",
                    config.label,
                    uid.decode(),
                    sizes[uid],
                )
                result.failed += 1
                continue
            raw = _fetch(imap, config, uid)
            if raw is None:  # expunged by another client meanwhile
                continue
            result.fetched += 1
            try:
                outcome = ticket_receive_email(bot=bot, raw=raw)
            except Exception:
                logger.exception("IMAP %s: email UID %s could not be stored; left unseen", config.label, uid.decode())
                result.failed += 1
                continue
            if outcome.status in STORED:
                result.stored += 1
            elif outcome.status == "duplicate":
                result.duplicates += 1
            else:
                result.ignored += 1
            _mark_done(imap, config, uid)
        if config.processed_folder and not _has(imap, "UIDPLUS") and not _has(imap, "MOVE"):
            _check(imap.expunge(), config, "expunge the moved emails")
    return result


@contextmanager
def mailbox_lock(config: ImapMailbox) -> Iterator[bool]:
    """Yield whether this process may poll `config` now: a Redis lock when REDIS_URL is
    set (beat runs can overlap across workers), else a lock in this process."""
    if settings.REDIS_URL:
        from redis.exceptions import LockError

        from neo_support.redis_client import get_redis

        lock = get_redis().lock(f"neo:imap-poll:{config.key}", timeout=LOCK_SECONDS, blocking=False)
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            with suppress(LockError):  # expired during a very long poll; nothing to undo
                lock.release()
        return
    with _local_locks_guard:
        local = _local_locks.setdefault(config.key, threading.Lock())
    if not local.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        local.release()


@contextmanager
def _session(config: ImapMailbox) -> Iterator[imaplib.IMAP4]:
    """Connected, logged in, with `config.folder` selected read-write."""
    imap = _connect(config)
    try:
        try:
            imap.login(_quote(config.username), config.password)
        except imaplib.IMAP4.error as error:
            raise MailboxError(f"{config.label}: login refused: {_text(error)}") from None
        # Servers list more after login (MOVE, UIDPLUS); imaplib kept the greeting's list.
        typ, data = imap.capability()
        if typ == "OK" and data and isinstance(data[-1], bytes):
            imap.capabilities = tuple(data[-1].decode().upper().split())
        typ, data = imap.select(_quote(config.folder))
        if typ != "OK":
            raise MailboxError(f"{config.label}: cannot open folder {config.folder!r}: {_text(data)}")
        if config.processed_folder:
            imap.create(_quote(config.processed_folder))  # NO when it exists already, which is fine
        yield imap
    except (imaplib.IMAP4.error, OSError) as error:
        # A dropped connection or a refused command mid-poll; what was stored is marked.
        raise MailboxError(f"{config.label}: {type(error).__name__}: {_text(error)}") from None
    finally:
        with suppress(imaplib.IMAP4.error, OSError):
            imap.logout()


def _connect(config: ImapMailbox) -> imaplib.IMAP4:
    timeout = settings.NEO_IMAP_TIMEOUT
    try:
        if config.tls == "ssl":
            return imaplib.IMAP4_SSL(
                config.host, config.port, ssl_context=ssl.create_default_context(), timeout=timeout
            )
        if config.tls == "none" and not host_is_loopback(config.host):
            raise MailboxError(f"{config.label}: plain-text IMAP is only allowed to a loopback host")
        imap = imaplib.IMAP4(config.host, config.port, timeout=timeout)
    except (imaplib.IMAP4.error, OSError) as error:
        raise MailboxError(f"{config.label}: cannot connect ({config.tls}): {_text(error)}") from None
    if config.tls == "starttls":
        try:
            imap.starttls(ssl_context=ssl.create_default_context())
        except (imaplib.IMAP4.error, OSError) as error:
            with suppress(OSError):
                imap.shutdown()
            raise MailboxError(f"{config.label}: STARTTLS failed: {_text(error)}") from None
    return imap


def _unseen(imap: imaplib.IMAP4, config: ImapMailbox) -> list[bytes]:
    typ, data = imap.uid("SEARCH", "UNSEEN")  # imaplib skips a None charset: the same "UID SEARCH UNSEEN"
    _check((typ, data), config, "search for unseen mail")
    return sorted((uid for line in data if line for uid in line.split()), key=int)


def _sizes(imap: imaplib.IMAP4, uids: list[bytes]) -> dict[bytes, int]:
    """Sizes first, so an oversized email is never downloaded."""
    if not uids:
        return {}
    typ, data = imap.uid("FETCH", b",".join(uids).decode(), "(RFC822.SIZE)")
    sizes: dict[bytes, int] = {}
    for line in data if typ == "OK" else []:
        if isinstance(line, bytes) and (uid := _UID.search(line)) and (size := _SIZE.search(line)):
            sizes[uid.group(1)] = int(size.group(1))
    return sizes


def _fetch(imap: imaplib.IMAP4, config: ImapMailbox, uid: bytes) -> bytes | None:
    # BODY.PEEK leaves \Seen alone: it is set only once the email is stored.
    typ, data = imap.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
    _check((typ, data), config, f"fetch email UID {uid.decode()}")
    for part in data:
        if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
            return part[1]
    return None


def _mark_done(imap: imaplib.IMAP4, config: ImapMailbox, uid: bytes) -> None:
    """Seen, or moved to the processed folder. Should this fail, the email is fetched
    again next time and stored as a duplicate, so a warning is enough."""
    number = uid.decode()
    if not config.processed_folder:
        answers = [imap.uid("STORE", number, "+FLAGS.SILENT", r"(\Seen)")]
    elif _has(imap, "MOVE"):
        answers = [
            imap.uid("STORE", number, "+FLAGS.SILENT", r"(\Seen)"),
            imap.uid("MOVE", number, _quote(config.processed_folder)),
        ]
    else:
        answers = [
            imap.uid("COPY", number, _quote(config.processed_folder)),
            imap.uid("STORE", number, "+FLAGS.SILENT", r"(\Seen \Deleted)"),
        ]
        if _has(imap, "UIDPLUS"):  # expunge just this email, not others marked deleted
            answers.append(imap.uid("EXPUNGE", number))
    for typ, data in answers:
        if typ != "OK":
            logger.warning("IMAP %s: could not mark email UID %s done: %s", config.label, number, _text(data))
            return


def _check(answer: tuple[str, list[object]], config: ImapMailbox, doing: str) -> None:
    typ, data = answer
    if typ != "OK":
        raise MailboxError(f"{config.label}: could not {doing}: {_text(data)}")


def _has(imap: imaplib.IMAP4, capability: str) -> bool:
    return capability in imap.capabilities


def _quote(name: str) -> str:
    """An IMAP quoted string: imaplib sends arguments as they are."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: object) -> str:
    """A server answer or an exception as one readable line."""
    if isinstance(value, list):
        value = b" ".join(part for part in value if isinstance(part, bytes))
    if isinstance(value, Exception):
        # imaplib's errors carry the server's bytes; OSError's first argument is an errno.
        value = value.args[0] if len(value.args) == 1 and isinstance(value.args[0], bytes) else str(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip() or "no details"
