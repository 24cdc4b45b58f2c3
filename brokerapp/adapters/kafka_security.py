"""How the broker's Kafka clients authenticate to the upstream cluster.

Rubin's alert stream (DMTN-210) serves community brokers over SASL_SSL with SCRAM-SHA-512,
and refuses consumer groups whose ID does not start with the broker's user name. The
settings (``upstream_security_protocol``, ``upstream_sasl_*``, ``upstream_ssl_*``,
``upstream_group_prefix``) say how to connect; :func:`upstream_security` gathers them once
and the two builders turn them into client options:

- :func:`aiokafka_options` for aiokafka (the gateway's mirror): ``security_protocol``,
  ``sasl_mechanism``, ``sasl_plain_username``/``password`` and an ``ssl_context`` that
  trusts the CA file (or the system store) and checks the host name.
- :func:`librdkafka_config` for confluent-kafka (admin and CLI clients):
  ``security.protocol``, ``sasl.mechanisms``, ``sasl.username``/``password``,
  ``ssl.ca.location``, ``ssl.certificate.location``, ``ssl.key.location``.

The password stays a :class:`~pydantic.SecretStr` until it is handed to a client; neither
builder's result is ever logged.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

from brokerapp.model.settings import Settings

__all__ = [
    "GroupPrefixError",
    "KafkaSecurity",
    "aiokafka_options",
    "check_group",
    "librdkafka_config",
    "upstream_security",
]


class GroupPrefixError(ValueError):
    """A consumer group ID lacks the prefix the upstream requires."""


@dataclass(frozen=True)
class KafkaSecurity:
    """Security settings of one cluster.

    Attributes
    ----------
    protocol : str
        ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
    mechanism : str
        SASL mechanism (used with the SASL protocols).
    username : str
        SASL user name.
    password : SecretStr
        SASL password.
    cafile, certfile, keyfile : Path or None
        CA bundle, client certificate and its key (used with the SSL protocols).
    group_prefix : str
        Prefix each consumer group ID must carry ("" for none).
    """

    protocol: str
    mechanism: str
    username: str
    password: SecretStr
    cafile: Path | None
    certfile: Path | None
    keyfile: Path | None
    group_prefix: str

    @property
    def sasl(self) -> bool:
        """Whether the protocol authenticates with SASL."""
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        """Whether the protocol runs over TLS."""
        return self.protocol in ("SSL", "SASL_SSL")


def upstream_security(settings: Settings) -> KafkaSecurity:
    """Return the upstream cluster's security settings (password read from its file)."""
    return KafkaSecurity(
        protocol=settings.upstream_security_protocol,
        mechanism=settings.upstream_sasl_mechanism,
        username=settings.upstream_sasl_username,
        password=settings.upstream_secret(),
        cafile=settings.upstream_cafile,
        certfile=settings.upstream_ssl_certfile,
        keyfile=settings.upstream_ssl_keyfile,
        group_prefix=settings.upstream_group_prefix,
    )


def check_group(security: KafkaSecurity, group: str) -> None:
    """Refuse a consumer group ID that lacks the required prefix.

    Raises
    ------
    GroupPrefixError
        Naming the group and the prefix.
    """
    if security.group_prefix and not group.startswith(security.group_prefix):
        raise GroupPrefixError(
            f"consumer group {group!r} does not start with {security.group_prefix!r}, which "
            "the upstream requires (upstream_group_prefix); rename the group"
        )


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """Return a client TLS context: the CA file (or system store), host names checked."""
    return create_ssl_context(
        cafile=str(security.cafile) if security.cafile else None,
        certfile=str(security.certfile) if security.certfile else None,
        keyfile=str(security.keyfile) if security.keyfile else None,
    )


def aiokafka_options(security: KafkaSecurity) -> dict[str, Any]:
    """Return the keyword arguments of an aiokafka client for this cluster."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.tls:
        options["ssl_context"] = ssl_context(security)
    if security.sasl:
        options["sasl_mechanism"] = security.mechanism
        options["sasl_plain_username"] = security.username
        options["sasl_plain_password"] = security.password.get_secret_value()
    return options


def librdkafka_config(security: KafkaSecurity) -> dict[str, Any]:
    """Return the librdkafka properties (confluent-kafka) for this cluster."""
    config: dict[str, Any] = {"security.protocol": security.protocol.lower()}
    if security.tls:
        if security.cafile:
            config["ssl.ca.location"] = str(security.cafile)
        if security.certfile:
            config["ssl.certificate.location"] = str(security.certfile)
        if security.keyfile:
            config["ssl.key.location"] = str(security.keyfile)
    if security.sasl:
        config["sasl.mechanisms"] = security.mechanism
        config["sasl.username"] = security.username
        config["sasl.password"] = security.password.get_secret_value()
    return config
