"""POSTing webhook bodies (httpx), verifying HTTPS with the settings' CA bundle."""

from __future__ import annotations

import ssl

import httpx

from brokerapp.model.settings import Settings

__all__ = ["WebhookClient"]


class WebhookClient:
    """One HTTP client for every subscription's POSTs.

    Parameters
    ----------
    settings : Settings
        ``webhook_ca_file`` (default: the system's CAs) and ``webhook_timeout_seconds``.
    """

    def __init__(self, settings: Settings):
        verify: ssl.SSLContext | bool = True
        if settings.webhook_ca_file is not None:
            verify = ssl.create_default_context(cafile=str(settings.webhook_ca_file))
        self.client = httpx.AsyncClient(
            verify=verify, timeout=settings.webhook_timeout_seconds, follow_redirects=False
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST once; return the status code (raises ``httpx.HTTPError`` on no answer)."""
        response = await self.client.post(url, content=body, headers=headers)
        return response.status_code

    async def close(self) -> None:
        """Close the connections."""
        await self.client.aclose()
