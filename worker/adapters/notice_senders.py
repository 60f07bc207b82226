"""Where notices go besides the app: e-mail over SMTP (smtplib) and a JSON webhook (urllib), each in a thread.

The standard library on purpose: no runtime dependency for two small, rare requests, and the architecture keeps
aiohttp to the entrypoints and the Nmbrs client. Errors become NoticeSendError with a message that is safe to
log and to show: never the SMTP password nor the webhook URL (its path often is the token).
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from worker.config import Settings


class NoticeSendError(Exception):
    """A channel did not accept a message; the notices stay unsent and the next run tries again."""


class SmtpSender:
    """Sends one plain-text e-mail per call to SMTP_TO, through SMTP_HOST."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host and settings.smtp_from and settings.smtp_to  # Settings.email_enabled
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.user = settings.smtp_user
        self.password = settings.smtp_password
        self.sender = settings.smtp_from
        self.recipients = list(settings.smtp_to)
        self.timeout_s = settings.notice_send_timeout_s

    async def send(self, subject: str, body: str) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        message.set_content(body)
        try:
            await asyncio.to_thread(self._send, message)
        except (smtplib.SMTPException, OSError) as error:
            raise NoticeSendError(f"e-mail via {self.host}:{self.port} failed: {type(error).__name__}") from error

    def _send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.security == "tls":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.user:
                client.login(self.user, self.password.get_secret_value() if self.password else "")
            client.send_message(message, to_addrs=self.recipients)


class WebhookSender:
    """POSTs a JSON body to NOTICE_WEBHOOK_URL (a Teams or Slack incoming webhook, or anything that takes JSON)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.notice_webhook_url is not None  # Settings.webhook_enabled
        self._url = settings.notice_webhook_url
        self.timeout_s = settings.notice_send_timeout_s

    async def send(self, payload: dict[str, Any]) -> None:
        await asyncio.to_thread(self._post, json.dumps(payload).encode())

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self._url.get_secret_value(),
            data=body,
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "nmbrs-sync"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as error:  # before URLError: it is one
            raise NoticeSendError(f"the webhook answered {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            # Only the reason ("Connection refused"): the URL, which carries the token, stays out of the message.
            reason = getattr(error, "reason", None) or type(error).__name__
            raise NoticeSendError(f"the webhook cannot be reached: {reason}") from None
