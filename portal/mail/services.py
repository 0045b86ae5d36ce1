"""Outgoing e-mail. Every message is a job: ``send`` renders it now (text and
HTML from ``templates/mail/<name>.txt`` and ``.html``) and queues it with the
change that caused it; the worker delivers it."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid, formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template

from portal.jobs.registry import PermanentJobError, handler
from portal.jobs.services import enqueue


def send(to: str, template: str, *, for_account=None, **context) -> None:
    """Queue ``mail/<template>``; ``for_account`` files the job under an account."""
    text = render_template(f"mail/{template}.txt", **context)
    first_line, _, body = text.partition("\n")
    if not first_line.startswith("Subject:"):
        raise ValueError(f"mail/{template}.txt must start with a 'Subject:' line")
    html = render_template(f"mail/{template}.html", **context)
    enqueue("mail.send", {"to": to, "subject": first_line.removeprefix("Subject:").strip(),
                          "text": body.lstrip("\n"), "html": html},
            subject=f"mail:{template}", account=for_account)


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


def _deliver_to_files(message: EmailMessage, folder: Path, job_id: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job_id:08d}.eml").write_bytes(bytes(message))


def _deliver_by_smtp(message: EmailMessage, url: str) -> None:
    parts = urlsplit(url)
    context = ssl.create_default_context()
    port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
    try:
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(parts.hostname, port, timeout=30, context=context)
        else:
            client = smtplib.SMTP(parts.hostname, port, timeout=30)
        with client:
            if parts.scheme == "smtp+starttls":
                client.starttls(context=context)
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        raise PermanentJobError(f"the mail server refused the recipient: {_codes(error.recipients)}") from None
    except smtplib.SMTPResponseException as error:
        if error.smtp_code >= 500:
            raise PermanentJobError(f"the mail server refused the message ({error.smtp_code})") from None
        raise ConnectionError(f"the mail server deferred the message ({error.smtp_code})") from None
    except (OSError, smtplib.SMTPException) as error:
        # Host and credentials stay out of the message: it lands in the jobs table.
        raise ConnectionError(f"the mail server could not be reached ({error.__class__.__name__})") from None


def _codes(recipients: dict) -> str:
    return ", ".join(f"{address} ({code})" for address, (code, _) in recipients.items())


@handler("mail.send", max_attempts=20, backoff_seconds=30, backoff_cap_seconds=1800)
def deliver(job) -> None:
    settings = current_app.config["PORTAL"]
    message = build_message(job.payload, settings["MAIL_FROM"])
    url = settings["SMTP_URL"]
    if url == "file":
        _deliver_to_files(message, Path(current_app.instance_path) / "mail", job.id)
    elif url.startswith("file:"):
        _deliver_to_files(message, Path(unquote(urlsplit(url).path)), job.id)
    else:
        _deliver_by_smtp(message, url)
    # The body may hold a one-time link: once delivered it is not kept at rest.
    job.payload = {"to": job.payload["to"], "subject": job.payload["subject"], "delivered": True}
