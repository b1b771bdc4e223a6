"""NEO_IMAP_MAILBOXES: read and checked at start-up, so a bad entry never waits for
the first poll to fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bots.tickets.imap_config import ImapMailbox, env_imap_mailboxes, host_is_loopback, mailboxes_parse
from neo_support.env import ConfigError
from tests.conftest import clean_env, run_manage, run_python

NAME = "NEO_IMAP_MAILBOXES"


def parse(*entries: dict[str, object]) -> list[ImapMailbox]:
    return mailboxes_parse(json.dumps(list(entries)), name=NAME)


def test_a_minimal_mailbox_gets_tls_port_993_and_the_inbox() -> None:
    [mailbox] = parse({"bot": "pk_1", "host": "imap.example.com", "username": "help", "password": "s3cret"})
    assert (mailbox.tls, mailbox.port, mailbox.folder, mailbox.processed_folder) == ("ssl", 993, "INBOX", "")
    assert mailbox.label == "help@imap.example.com:993/INBOX"
    assert "s3cret" not in repr(mailbox)


def test_starttls_defaults_to_port_143_and_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text("from-a-docker-secret\n")
    [mailbox] = parse(
        {
            "bot": "pk_1",
            "host": "imap.example.com",
            "username": "help",
            "password_file": str(secret),
            "tls": "starttls",
            "folder": "Support",
            "processed_folder": "Support/Done",
        }
    )
    assert (mailbox.port, mailbox.password, mailbox.processed_folder) == (143, "from-a-docker-secret", "Support/Done")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_plain_text_imap_is_allowed_to_loopback(host: str) -> None:
    assert host_is_loopback(host)
    parse({"bot": "pk_1", "host": host, "username": "u", "password": "p", "tls": "none"})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"host": "h", "username": "u", "password": "p"}, '"bot" is required'),
        ({"bot": "pk", "host": "h", "username": "u"}, 'exactly one of "password" and "password_file"'),
        ({"bot": "pk", "host": "h", "username": "u", "password": "p", "password_file": "/x"}, "exactly one of"),
        ({"bot": "pk", "host": "h", "username": "u", "password_file": "/nonexistent"}, "cannot read password_file"),
        ({"bot": "pk", "host": "h", "username": "u", "pasword": "p"}, "unknown key(s) pasword"),
        ({"bot": "pk", "host": "h", "username": "u", "password": "p", "port": "993"}, '"port" must be a whole number'),
        ({"bot": "pk", "host": "h", "username": "u", "password": "p", "port": 0.5}, '"port" must be a whole number'),
        ({"bot": "pk", "host": "h", "username": "u", "password": "p", "tls": "tls"}, '"tls" must be one of'),
        ({"bot": "pk", "host": "imap.example.com", "username": "u", "password": "p", "tls": "none"}, "loopback"),
        ({"bot": "pk", "host": "10.0.0.1", "username": "u", "password": "p", "tls": "none"}, "loopback"),
        ({"bot": "", "host": "h", "username": "u", "password": "p"}, '"bot" must be a non-empty string'),
        ({"bot": "pk", "host": "h", "username": "u", "password": "p", "folder": "Über"}, "printable ASCII"),
        ({"bot": "pk", "host": "h", "username": "u", "password": "p", "processed_folder": "INBOX"}, "must differ"),
        ("imap://h", "mailbox 0: expected an object"),
    ],
)
def test_a_malformed_mailbox_is_refused_naming_the_variable_and_the_entry(entry: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^NEO_IMAP_MAILBOXES: mailbox 0") as error:
        mailboxes_parse(json.dumps([entry]), name=NAME)
    assert message in str(error.value)


def test_broken_json_is_refused_without_echoing_the_passwords() -> None:
    with pytest.raises(ConfigError, match="not valid JSON") as error:
        mailboxes_parse('[{"password": "hunter2"', name=NAME)
    assert "hunter2" not in str(error.value)
    with pytest.raises(ConfigError, match="expected a JSON list"):
        mailboxes_parse('{"bot": "pk"}', name=NAME)


def test_the_same_mailbox_twice_is_refused() -> None:
    entry = {"bot": "pk", "host": "h", "username": "u", "password": "p"}
    with pytest.raises(ConfigError, match="listed twice"):
        parse(entry, entry)


def test_the_list_can_come_from_a_file_but_not_from_both(tmp_path: Path) -> None:
    listing = tmp_path / "mailboxes.json"
    listing.write_text(json.dumps([{"bot": "pk", "host": "h", "username": "u", "password": "p"}]))
    assert env_imap_mailboxes(NAME, environ={}) == []
    [mailbox] = env_imap_mailboxes(NAME, environ={f"{NAME}_FILE": str(listing)})
    assert mailbox.host == "h"
    with pytest.raises(ConfigError, match="set either NEO_IMAP_MAILBOXES or NEO_IMAP_MAILBOXES_FILE"):
        env_imap_mailboxes(NAME, environ={NAME: "[]", f"{NAME}_FILE": str(listing)})
    with pytest.raises(ConfigError, match="^NEO_IMAP_MAILBOXES_FILE: cannot read"):
        env_imap_mailboxes(NAME, environ={f"{NAME}_FILE": str(tmp_path / "missing.json")})
    listing.write_text("[{}]")
    with pytest.raises(ConfigError, match='^NEO_IMAP_MAILBOXES_FILE: mailbox 0: "bot" is required'):
        env_imap_mailboxes(NAME, environ={f"{NAME}_FILE": str(listing)})


def test_a_malformed_mailbox_list_stops_start_up(var_dir: Path) -> None:
    bad = json.dumps([{"bot": "pk", "host": "imap.example.com", "username": "u", "password": "p", "tls": "none"}])
    result = run_manage("check", env=clean_env(NEO_VAR_DIR=str(var_dir), NEO_IMAP_MAILBOXES=bad))
    assert result.returncode == 2
    assert "Configuration error: NEO_IMAP_MAILBOXES: mailbox 0 (u@imap.example.com)" in result.stderr
    assert "Traceback" not in result.stderr


def test_beat_polls_the_mailboxes_only_when_there_are_some(var_dir: Path) -> None:
    code = "import django, json; django.setup(); from django.conf import settings as s; "
    code += "print(json.dumps(s.CELERY_BEAT_SCHEDULE.get('poll-mailboxes')))"
    env = clean_env(DJANGO_SETTINGS_MODULE="neo_support.settings", NEO_VAR_DIR=str(var_dir), NEO_IMAP_MAILBOXES="")
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) is None

    mailboxes = json.dumps([{"bot": "pk", "host": "imap.example.com", "username": "u", "password": "p"}])
    result = run_python(code, {**env, "NEO_IMAP_MAILBOXES": mailboxes, "NEO_IMAP_POLL_SECONDS": "30"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "task": "bots.tasks.poll_mailboxes",
        "schedule": 30,
        "options": {"expires": 30},
    }
