"""Email and webhook subscriptions, from one TOML file.

::

    [[email]]
    id = "alice-m31"              # stable: names the subscription in the ledger and links
    to = "alice@example.org"
    watchlists = ["wl1"]          # watchlist IDs and/or annotation sources
    sources = ["catalogue:bright"]
    digest_only = false           # true: no per-alert emails, only the periodic digest

    [[webhook]]
    id = "slack-sne"
    url = "https://hooks.example.org/T000/B000"
    secret = "..."                # HMAC-SHA256 key of the signature header
    watchlists = ["wl1"]
    sources = []
    slack = false                 # true: a Slack-compatible {"text": ...} payload

A subscription matches a notice when one of its watchlists or sources is among the notice's
(:attr:`brokerapp.domain.notify.notices.Notice.sources`). The file holds the webhook
secrets: keep it readable by the worker only.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brokerapp.domain.notify.notices import Notice

__all__ = [
    "EmailSubscription",
    "Subscriptions",
    "SubscriptionError",
    "WebhookSubscription",
    "load_subscriptions",
    "parse_subscriptions",
]


class SubscriptionError(ValueError):
    """A subscriptions file that cannot be used (its entry and the reason)."""


@dataclass(frozen=True)
class EmailSubscription:
    """Emails to one address for some watchlists or sources."""

    id: str
    to: str
    names: frozenset[str]
    digest_only: bool = False


@dataclass(frozen=True)
class WebhookSubscription:
    """POSTs to one URL for some watchlists or sources, signed with ``secret``."""

    id: str
    url: str
    secret: str
    names: frozenset[str]
    slack: bool = False

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookSubscription(id={self.id!r}, url={self.url!r}, names={set(self.names)})"


@dataclass(frozen=True)
class Subscriptions:
    """Every subscription of the file."""

    email: tuple[EmailSubscription, ...] = ()
    webhook: tuple[WebhookSubscription, ...] = ()

    def emails_for(self, notice: Notice) -> list[EmailSubscription]:
        """Return the email subscriptions matching ``notice``."""
        return [s for s in self.email if s.names & notice.sources]

    def webhooks_for(self, notice: Notice) -> list[WebhookSubscription]:
        """Return the webhook subscriptions matching ``notice``."""
        return [s for s in self.webhook if s.names & notice.sources]


def _names(where: str, entry: Mapping[str, Any]) -> frozenset[str]:
    names: list[str] = []
    for key in ("watchlists", "sources"):
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SubscriptionError(f"{where}: '{key}' must be a list of strings")
        names += value
    if not names:
        raise SubscriptionError(f"{where}: names no watchlist or source")
    return frozenset(names)


def _text(where: str, entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise SubscriptionError(f"{where}: '{key}' must be a non-empty string")
    return value


def _check_keys(where: str, entry: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(entry) - set(allowed)
    if unknown:
        raise SubscriptionError(f"{where}: unknown keys {sorted(unknown)}")


def parse_subscriptions(data: Mapping[str, Any]) -> Subscriptions:
    """Return the subscriptions of a parsed TOML document.

    Raises
    ------
    SubscriptionError
        A missing or wrong key, an unknown key, or two subscriptions of one kind with the
        same ID.
    """
    _check_keys("subscriptions", data, ["email", "webhook"])
    emails, hooks = [], []
    for i, entry in enumerate(data.get("email", [])):
        where = f"email[{i}]"
        _check_keys(where, entry, ["id", "to", "watchlists", "sources", "digest_only"])
        to = _text(where, entry, "to")
        if "@" not in to:
            raise SubscriptionError(f"{where}: 'to' is not an address: {to!r}")
        emails.append(
            EmailSubscription(
                _text(where, entry, "id"),
                to,
                _names(where, entry),
                bool(entry.get("digest_only", False)),
            )
        )
    for i, entry in enumerate(data.get("webhook", [])):
        where = f"webhook[{i}]"
        _check_keys(where, entry, ["id", "url", "secret", "watchlists", "sources", "slack"])
        url = _text(where, entry, "url")
        if not url.startswith(("https://", "http://")):
            raise SubscriptionError(f"{where}: 'url' must be http(s): {url!r}")
        hooks.append(
            WebhookSubscription(
                _text(where, entry, "id"),
                url,
                _text(where, entry, "secret"),
                _names(where, entry),
                bool(entry.get("slack", False)),
            )
        )
    for kind, items in (("email", emails), ("webhook", hooks)):
        ids = [s.id for s in items]
        if len(ids) != len(set(ids)):
            raise SubscriptionError(f"{kind}: subscription IDs repeat: {sorted(ids)}")
    return Subscriptions(tuple(emails), tuple(hooks))


def load_subscriptions(path: Path) -> Subscriptions:
    """Read and parse a subscriptions file; a missing file is no subscription.

    Raises
    ------
    SubscriptionError
        Unreadable TOML, or see :func:`parse_subscriptions`.
    """
    if not path.exists():
        return Subscriptions()
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SubscriptionError(f"{path}: {exc}") from exc
    return parse_subscriptions(data)
