"""IMAP polling against a real server: a throwaway Dovecot on loopback, started by the
test (never the system service). Mail goes in by IMAP APPEND, as a mail server would
deliver it; the poll must store it as tickets and mark it seen only once stored."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from bots.models import Attachment, Message, Role, Ticket
from bots.tickets.imap_config import ImapMailbox
from neo_support.tasking import wait_for_in_process_tasks
from tests.conftest import free_port
from tests.factories import BotFactory

DOVECOT = shutil.which("dovecot", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
pytestmark = pytest.mark.skipif(
    DOVECOT is None, reason="needs the dovecot binary (Debian's dovecot-imapd; .ci/run installs it)"
)

USER, PASSWORD = "support", "imap-test-password"

CONFIG = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {logs}/dovecot.log
info_log_path = {logs}/dovecot.log
listen = 127.0.0.1
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {uid}
mail_location = maildir:{home}/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
"""


class Dovecot:
    """One Dovecot instance with one user, and a client to put mail in and look at it."""

    def __init__(self, tmp_path: Path, *, certificate: tuple[Path, Path] | None = None) -> None:
        self.port = free_port()
        self.tls_port = free_port() if certificate else 0
        # Unix socket paths are limited to about 100 bytes, too short for pytest's tmp_path.
        self.base = Path(tempfile.mkdtemp(prefix="neo-dovecot-"))
        self.base.chmod(0o755)
        home = self.base / "home"
        home.mkdir()
        if os.geteuid() == 0:
            # Dovecot refuses to log in or read mail as root: both run as an unprivileged user.
            account = pwd.getpwnam("dovenull" if _user_exists("dovenull") else "nobody")
            os.chown(home, account.pw_uid, account.pw_gid)
            login_user, internal_user = account.pw_name, "root"
        else:
            account = pwd.getpwuid(os.getuid())
            login_user = internal_user = account.pw_name
        users = tmp_path / "users"
        users.write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{account.pw_uid}:{account.pw_gid}::{home}::\n")
        self.log = tmp_path / "dovecot.log"
        config = tmp_path / "dovecot.conf"
        tls = f"ssl = yes\nssl_cert = <{certificate[0]}\nssl_key = <{certificate[1]}" if certificate else "ssl = no"
        config.write_text(
            CONFIG.format(
                base=self.base,
                logs=tmp_path,
                login_user=login_user,
                internal_user=internal_user,
                uid=account.pw_uid,
                home=home,
                port=self.port,
                tls_port=self.tls_port,
                ssl=tls,
                users=users,
            )
        )
        assert DOVECOT is not None
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        output = self.process.stdout.read().decode() if self.process.stdout else ""
        log = self.log.read_text() if self.log.exists() else ""
        raise RuntimeError(f"dovecot did not start on port {self.port}:\n{output}\n{log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def mailbox(self, bot: Any, **fields: Any) -> ImapMailbox:
        return ImapMailbox(
            bot=bot.public_key,
            host="127.0.0.1",
            port=self.port,
            username=USER,
            password=PASSWORD,
            tls="none",
            **fields,
        )

    def client(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as imap:
            typ, data = imap.append(folder, None, None, raw)
            assert typ == "OK", data

    def subjects(self, criterion: str, folder: str = "INBOX") -> list[str]:
        """Subjects of the messages in `folder` matching an IMAP search (UNSEEN, SEEN, ALL)."""
        with self.client() as imap:
            typ, _ = imap.select(folder, readonly=True)
            assert typ == "OK", folder
            _, data = imap.uid("SEARCH", None, criterion)
            subjects = []
            for uid in data[0].split():
                _, fetched = imap.uid("FETCH", uid.decode(), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                subjects.append(fetched[0][1].decode().split(":", 1)[1].strip())
            return sorted(subjects)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path)
    yield server
    server.stop()


def email(subject: str, *, html: str = "", attachment: bytes = b"", **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Jo Customer <jo@customer.example>"
    mail["To"] = "help@tallyho.example"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{subject.lower().replace(' ', '-')}@customer.example>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    if html:
        mail.set_content(html, subtype="html")
    else:
        mail.set_content(f"Hello, this is about: {subject}. Can you help?")
    if attachment:
        mail.add_attachment(attachment, maintype="application", subtype="pdf", filename="invoice.pdf")
    return mail.as_bytes()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_new_mail_becomes_tickets_is_marked_seen_and_is_not_stored_twice(dovecot: Dovecot) -> None:
    from bots.tickets.imap_poll import mailbox_poll

    bot = BotFactory(ticket_mode="off")
    dovecot.deliver(email("Refund please"))
    dovecot.deliver(email("Html only", html="<p>My <b>invoice</b> is wrong.</p>"))
    dovecot.deliver(email("Invoice attached", attachment=b"%PDF-1.4 fake"))
    dovecot.deliver(email("Out of office", Auto_Submitted="auto-replied"))

    result = mailbox_poll(dovecot.mailbox(bot))
    wait_for_in_process_tasks(timeout=60)

    assert (result.fetched, result.stored, result.duplicates, result.ignored, result.failed) == (4, 3, 0, 1, 0)
    tickets = Ticket.objects.filter(conversation__bot=bot)
    assert sorted(tickets.values_list("subject", flat=True)) == ["Html only", "Invoice attached", "Refund please"]
    html = Message.objects.get(conversation__ticket__subject="Html only", role=Role.VISITOR)
    assert "invoice" in html.text and "<b>" not in html.text
    assert Attachment.objects.get(message__conversation__bot=bot).filename == "invoice.pdf"
    assert dovecot.subjects("UNSEEN") == []
    assert dovecot.subjects("SEEN") == ["Html only", "Invoice attached", "Out of office", "Refund please"]

    again = mailbox_poll(dovecot.mailbox(bot))
    assert (again.fetched, again.stored) == (0, 0)

    # The same email delivered a second time (a redelivery) is marked seen, not stored again.
    dovecot.deliver(email("Refund please"))
    redelivered = mailbox_poll(dovecot.mailbox(bot))
    assert (redelivered.fetched, redelivered.stored, redelivered.duplicates) == (1, 0, 1)
    assert dovecot.subjects("UNSEEN") == []
    assert tickets.count() == 3
    wait_for_in_process_tasks(timeout=60)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_an_email_that_fails_to_store_stays_unseen_and_is_picked_up_by_the_next_poll(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bots.tickets import imap_poll

    bot = BotFactory(ticket_mode="off")
    dovecot.deliver(email("Breaks the database"))
    dovecot.deliver(email("Stored fine"))
    real = imap_poll.ticket_receive_email

    def failing_once(*, bot: Any, raw: bytes) -> Any:
        if b"Breaks the database" in raw:
            raise RuntimeError("database went away")
        return real(bot=bot, raw=raw)

    monkeypatch.setattr(imap_poll, "ticket_receive_email", failing_once)
    first = imap_poll.mailbox_poll(dovecot.mailbox(bot))
    assert (first.fetched, first.stored, first.failed) == (2, 1, 1)
    assert dovecot.subjects("UNSEEN") == ["Breaks the database"]
    assert "could not be stored; left unseen" in caplog.text

    monkeypatch.setattr(imap_poll, "ticket_receive_email", real)
    second = imap_poll.mailbox_poll(dovecot.mailbox(bot))
    assert (second.fetched, second.stored, second.failed) == (1, 1, 0)
    assert dovecot.subjects("UNSEEN") == []
    assert Ticket.objects.filter(conversation__bot=bot).count() == 2
    wait_for_in_process_tasks(timeout=60)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_with_a_processed_folder_stored_mail_is_moved_there(dovecot: Dovecot) -> None:
    from bots.tickets.imap_poll import mailbox_poll

    bot = BotFactory(ticket_mode="off")
    dovecot.deliver(email("Move me"))

    result = mailbox_poll(dovecot.mailbox(bot, processed_folder="Support Done"))
    wait_for_in_process_tasks(timeout=60)

    assert result.stored == 1
    assert dovecot.subjects("ALL") == []
    assert dovecot.subjects("SEEN", folder='"Support Done"') == ["Move me"]


@pytest.mark.django_db(transaction=True)
def test_bad_credentials_an_unknown_bot_and_a_closed_port_give_clear_errors(dovecot: Dovecot) -> None:
    from bots.tickets.imap_poll import MailboxError, mailbox_poll

    bot = BotFactory(ticket_mode="off")
    good = dovecot.mailbox(bot)
    with pytest.raises(MailboxError, match=rf"support@127\.0\.0\.1:{dovecot.port}/INBOX: login refused: .*Auth"):
        mailbox_poll(replace(good, password="wrong"))
    with pytest.raises(MailboxError, match="no bot has the public key 'pk_nobody'"):
        mailbox_poll(replace(good, bot="pk_nobody"))
    with pytest.raises(MailboxError, match="cannot connect"):
        mailbox_poll(replace(good, port=free_port()))
    with pytest.raises(MailboxError, match="cannot open folder 'Nowhere'"):
        mailbox_poll(replace(good, folder="Nowhere"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_the_task_polls_every_mailbox_logs_a_broken_one_and_skips_one_being_polled(
    dovecot: Dovecot, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from bots.tickets.imap_poll import mailbox_lock
    from bots.tickets.tasks import poll_mailboxes

    bot = BotFactory(ticket_mode="off")
    good = dovecot.mailbox(bot)
    broken = replace(good, username="intruder")
    busy = replace(good, folder="Archive")
    settings.NEO_IMAP_MAILBOXES = [broken, good, busy]
    dovecot.deliver(email("Via the task"))

    with mailbox_lock(busy) as held:
        assert held
        results = poll_mailboxes()
    wait_for_in_process_tasks(timeout=60)

    assert "login refused" in results[broken.key]["error"]
    assert "IMAP poll failed" in caplog.text
    assert results[good.key]["stored"] == 1
    assert results[busy.key] == {"skipped": "busy"}
    assert Ticket.objects.get(conversation__bot=bot).subject == "Via the task"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, trusted by nobody unless a test says so."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_tls_and_starttls_verify_the_server_certificate(
    tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    from bots.tickets import imap_poll

    server = Dovecot(tmp_path, certificate=certificate)
    try:
        bot = BotFactory(ticket_mode="off")
        implicit = replace(server.mailbox(bot), tls="ssl", port=server.tls_port)
        starttls = replace(server.mailbox(bot), tls="starttls")
        with pytest.raises(imap_poll.MailboxError, match=r"cannot connect \(ssl\): .*CERTIFICATE_VERIFY_FAILED"):
            imap_poll.mailbox_poll(implicit)
        with pytest.raises(imap_poll.MailboxError, match="STARTTLS failed: .*CERTIFICATE_VERIFY_FAILED"):
            imap_poll.mailbox_poll(starttls)

        # Trusted (as a real certificate would be), both modes log in and fetch.
        trusting = ssl.create_default_context(cafile=str(certificate[0]))
        monkeypatch.setattr(imap_poll.ssl, "create_default_context", lambda: trusting)
        server.deliver(email("Over tls"))
        assert imap_poll.mailbox_poll(implicit).stored == 1
        server.deliver(email("Over starttls"))
        assert imap_poll.mailbox_poll(starttls).stored == 1
        wait_for_in_process_tasks(timeout=60)
    finally:
        server.stop()
