"""Bearer tokens for the workers' write endpoints.

A worker's web view binds to ``web_bind``. Its read-only pages (status, metrics, listings)
stay open. A write endpoint (the watchlist worker's ``PUT`` and ``DELETE`` today) answers
``401`` with ``WWW-Authenticate: Bearer`` unless the request carries
``Authorization: Bearer <web_token>``, whenever a token is needed:

- ``web_auth="auto"`` (the default): when ``web_bind`` is not a loopback address
  (``127.0.0.0/8``, ``::1`` or ``localhost``). ``0.0.0.0``, a host name and any other
  address count as beyond loopback.
- ``web_auth="always"``: on every address.

A worker with write endpoints refuses to start (:class:`WebAuthError`) when a token is
needed and none is configured, rather than serve writes to anyone who can reach it. Tokens
are compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from pydantic import SecretStr

from brokerapp.model.settings import Settings

__all__ = ["WebAuthError", "WriteGuard", "is_loopback"]


class WebAuthError(ValueError):
    """A write endpoint needs a token and the settings give none."""


def is_loopback(bind: str) -> bool:
    """Return whether a bind address reaches only this host.

    Parameters
    ----------
    bind : str
        An IPv4 or IPv6 address, or a host name.

    Returns
    -------
    bool
        True for loopback addresses and ``localhost``; False for ``0.0.0.0``, ``::``, any
        other address and any other host name.
    """
    if bind.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip().strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WriteGuard:
    """Decide whether a write request may proceed.

    Attributes
    ----------
    required : bool
        Whether requests must carry the token.
    token : SecretStr
        The expected bearer token (ignored when not required).
    """

    required: bool
    token: SecretStr

    @classmethod
    def from_settings(cls, settings: Settings) -> WriteGuard:
        """Build the guard of a worker from ``web_auth``, ``web_bind`` and the token.

        Raises
        ------
        WebAuthError
            If a token is needed and neither ``web_token`` nor ``web_token_file`` gives one.
        """
        required = settings.web_auth == "always" or not is_loopback(settings.web_bind)
        token = settings.web_secret()
        if required and not token.get_secret_value():
            raise WebAuthError(
                f"the write endpoints on {settings.web_bind} need a bearer token "
                f"(web_auth={settings.web_auth}): set BROKER_WEB_TOKEN or BROKER_WEB_TOKEN_FILE"
            )
        return cls(required, token)

    def refusal(self, authorization: str | None) -> str | None:
        """Return why a request with this ``Authorization`` header is refused, or None.

        Parameters
        ----------
        authorization : str or None
            The request's ``Authorization`` header.

        Returns
        -------
        str or None
            None when the request may proceed; else a reason that names no secret.
        """
        if not self.required:
            return None
        if not authorization:
            return "this endpoint needs an Authorization: Bearer token"
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return "the Authorization header is not a Bearer token"
        expected = self.token.get_secret_value().encode()
        if not hmac.compare_digest(given.strip().encode(), expected):
            return "the bearer token is not valid"
        return None
