"""Outgoing e-mail. Every message is a job: ``send`` renders it now (text and
HTML from ``templates/mail/<name>.txt`` and ``.html``) and queues it with the
change that caused it; the worker delivers it."""

from __future__ import annotations

import json
import secrets
import smtplib
import ssl
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid, formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template
from flask_babel import gettext as _

from portal.jobs.registry import PermanentJobError, handler
from portal.jobs.services import enqueue
from portal.sealing import QUEUED_MAIL, seal, unseal


def render_message(to: str, template: str, *, language: str | None = None, **context) -> dict:
    """Subject, text and HTML of ``mail/<template>``: the payload of a mail job, written in
    ``language`` (default: the language of the person with that address, see ``_recipients_language``)."""
    with _in_recipients_language(to, language):
        return _render(to, template, **context)


def _recipients_language(person) -> str | None:
    """The language they chose; else, for a corporate user (made by their organisation, who
    may never have chosen one), their account's; else None: the portal's."""
    from portal.accounts.models import Account
    from portal.extensions import db
    from portal.i18n import chosen

    if chosen(person.locale):
        return person.locale
    if person.corporate_account_id is not None:
        account = db.session.get(Account, person.corporate_account_id)
        return chosen(account.default_locale) if account is not None else None
    return None


@contextmanager
def _in_recipients_language(to: str, language: str | None):
    from portal.auth.models import User
    from portal.extensions import db
    from portal.i18n import in_language

    person = db.session.execute(db.select(User).where(User.email == to.lower())).scalar_one_or_none()
    code = language or (_recipients_language(person) if person is not None else None)
    with in_language(code, getattr(person, "timezone", None) or "UTC"):
        yield


def _render(to: str, template: str, **context) -> dict:
    text = render_template(f"mail/{template}.txt", **context)
    first_line, _newline, body = text.partition("\n")
    if not first_line.startswith("Subject:"):
        raise ValueError(f"mail/{template}.txt must start with a 'Subject:' line")
    html = render_template(f"mail/{template}.html", **context)
    # One line whatever the names put in it hold: a line break in a header makes a message unsendable.
    subject = " ".join(first_line.removeprefix("Subject:").split())
    return {"to": to, "subject": subject, "text": body.lstrip("\n"),
            "html": html}


def send(to: str, template: str, *, for_account=None, language: str | None = None, **context) -> None:
    """Queue ``mail/<template>`` in the recipient's language (``language`` for someone without a
    profile); ``for_account`` files the job under an account.

    The body may hold a one-time link: while it waits in the queue it is sealed (encrypted
    with a key derived from the portal's secret), and only the recipient and subject are clear.
    """
    message = render_message(to, template, language=language, **context)
    body = json.dumps({"text": message["text"], "html": message["html"]})
    payload = {"to": message["to"], "subject": message["subject"],
               "sealed": seal(QUEUED_MAIL, body).decode("ascii")}
    enqueue("mail.send", payload, subject=f"mail:{template}", account=for_account)


def _opened(payload: dict) -> dict:
    body = unseal(QUEUED_MAIL, payload["sealed"].encode("ascii"))
    if body is None:
        raise PermanentJobError(_("the message was sealed with another secret key and cannot be read; "
                                  "the portal's secret key changed while it waited"))
    return {"to": payload["to"], "subject": payload["subject"], **json.loads(body)}


def build_message(payload: dict, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">") or "localhost")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


def _deliver_to_files(message: EmailMessage, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.eml").write_bytes(bytes(message))


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where and how to hand messages over, as SMTP_URL says."""

    host: str
    port: int
    security: str  # "plain", "starttls" or "tls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)


# URL scheme: (security, default port)
_SMTP_SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


def smtp_endpoint(url: str) -> SmtpEndpoint:
    parts = urlsplit(url)
    security, default_port = _SMTP_SCHEMES[parts.scheme]
    if not parts.hostname:
        raise ValueError("SMTP_URL names no mail server")
    return SmtpEndpoint(host=parts.hostname, port=parts.port or default_port, security=security,
                        username=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password is not None else None)


def _deliver_by_smtp(message: EmailMessage, endpoint: SmtpEndpoint) -> None:
    context = ssl.create_default_context()
    try:
        if endpoint.security == "tls":
            client = smtplib.SMTP_SSL(endpoint.host, endpoint.port, timeout=30, context=context)
        else:
            client = smtplib.SMTP(endpoint.host, endpoint.port, timeout=30)
        with client:
            if endpoint.security == "starttls":
                client.starttls(context=context)
            if endpoint.username:
                client.login(endpoint.username, endpoint.password or "")
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        # 4xx (greylisting, a full mailbox) asks to try again later; only 5xx is final.
        if all(code >= 500 for code, _reply in error.recipients.values()):
            raise PermanentJobError(_("the mail server refused the recipient: %(codes)s",
                                      codes=_codes(error.recipients))) from None
        raise ConnectionError(_("the mail server deferred the recipient: %(codes)s",
                                codes=_codes(error.recipients))) from None
    except smtplib.SMTPAuthenticationError as error:
        # The portal's credentials are wrong, not the message: it waits until they are fixed.
        raise ConnectionError(_("the mail server refused the portal's login (%(code)s)",
                                code=error.smtp_code)) from None
    except smtplib.SMTPNotSupportedError as error:
        # SMTP_URL asks for STARTTLS or a login the server does not offer.
        raise ConnectionError(_("the mail server cannot do what SMTP_URL asks: %(error)s", error=error)) from None
    except smtplib.SMTPResponseException as error:
        if error.smtp_code >= 500:
            raise PermanentJobError(_("the mail server refused the message (%(code)s)",
                                      code=error.smtp_code)) from None
        raise ConnectionError(_("the mail server deferred the message (%(code)s)", code=error.smtp_code)) from None
    except (OSError, smtplib.SMTPException) as error:
        # Host and credentials stay out of the message: it lands in the jobs table.
        raise ConnectionError(_("the mail server could not be reached (%(error)s)",
                                error=error.__class__.__name__)) from None


def _codes(recipients: dict) -> str:
    return ", ".join(f"{address} ({code})" for address, (code, _reply) in recipients.items())


def hand_over(payload: dict, name: str) -> None:
    """Deliver one rendered message now, as SMTP_URL says; raise to have the job retried."""
    settings = current_app.config["PORTAL"]
    message = build_message(payload, settings["MAIL_FROM"])
    url = settings["SMTP_URL"]
    if url == "file":
        _deliver_to_files(message, Path(current_app.instance_path) / "mail", name)
    elif url.startswith("file:"):
        _deliver_to_files(message, Path(unquote(urlsplit(url).path)), name)
    else:
        _deliver_by_smtp(message, smtp_endpoint(url))


@handler("mail.send", max_attempts=20, backoff_seconds=30, backoff_cap_seconds=1800)
def deliver(job) -> None:
    hand_over(_opened(job.payload), f"{job.id:08d}")
    # The body may hold a one-time link: once delivered it is not kept at rest.
    job.payload = {"to": job.payload["to"], "subject": job.payload["subject"], "delivered": True}


def deliver_now(to: str, template: str, *, language: str | None = None, **context) -> None:
    """Render and deliver inside the current job, for jobs that make a one-time
    link as they run: the link then never rests in a queued payload."""
    hand_over(render_message(to, template, language=language, **context), f"{secrets.token_hex(8)}")
