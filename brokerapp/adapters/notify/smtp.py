"""Sending one email over SMTP (aiosmtplib), with STARTTLS and AUTH from the settings."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aiosmtplib

from brokerapp.model.settings import Settings

__all__ = ["SMTP_ERRORS", "SmtpSender"]

SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)
"""What a send raises when the server is down, refuses, or times out: retry later."""


class SmtpSender:
    """Send messages through the settings' SMTP server.

    Parameters
    ----------
    settings : Settings
        ``smtp_host``, ``smtp_port``, ``smtp_starttls``, ``smtp_tls_ca_file``, ``smtp_user``,
        ``smtp_password`` (never logged), ``smtp_timeout_seconds``.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tls: ssl.SSLContext | None = None
        if settings.smtp_starttls:
            cafile = str(settings.smtp_tls_ca_file) if settings.smtp_tls_ca_file else None
            self.tls = ssl.create_default_context(cafile=cafile)

    async def send(self, message: EmailMessage) -> None:
        """Send one message; raises one of :data:`SMTP_ERRORS` when it did not go."""
        s = self.settings
        password = s.smtp_password.get_secret_value()
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            start_tls=bool(s.smtp_starttls),
            tls_context=self.tls,
            username=s.smtp_user or None,
            password=password if s.smtp_user else None,
            timeout=s.smtp_timeout_seconds,
        )
