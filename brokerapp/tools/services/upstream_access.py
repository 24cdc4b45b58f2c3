"""Who may read the embedded upstream, as Rubin grants a community broker.

The upstream stand-in serves the broker on a SASL_SSL listener with ``StandardAuthorizer``
and nothing allowed without an ACL (:func:`~brokerapp.tools.services.config.
upstream_security_properties`). For the broker's user (``upstream_sasl_username``) this
module:

- keeps its password in ``upstream_sasl_password``, else the password file
  (``<home>/kafka-upstream/client.password``, generated once, owner-only), which is where
  the default settings of every client look (:func:`upstream_client_password`);
- makes its SCRAM-SHA-512 credential (also given at format time) and its ACLs through the
  internal listener (:func:`grant_upstream_access`): ``READ`` and ``DESCRIBE`` on the topics
  that start as the daily alert topics do (``ztf_topic_pattern`` and
  ``lsst_topic_pattern`` up to ``{date}``), and ``READ`` on the consumer groups that start
  with ``upstream_group_prefix``. No write, create or delete, and no other group.
"""

from __future__ import annotations

import os
import secrets

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from brokerapp.model.settings import Settings
from brokerapp.tools.services.process import ServiceError

__all__ = ["alert_topic_prefixes", "grant_upstream_access", "upstream_client_password"]

#: SCRAM iterations of the broker's credential (Kafka's minimum is 4096).
SCRAM_ITERATIONS = 8192
#: Seconds the admin requests may take.
ADMIN_TIMEOUT = 30.0


def upstream_client_password(settings: Settings) -> str:
    """Return the broker's upstream password, generating and saving one the first time."""
    password = settings.upstream_secret().get_secret_value()
    if password:
        return password
    path = settings.upstream_password_path
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def alert_topic_prefixes(settings: Settings) -> list[str]:
    """Return the topic name prefixes of the daily alert topics (up to ``{date}``)."""
    return sorted(
        {p.split("{date}")[0] for p in (settings.ztf_topic_pattern, settings.lsst_topic_pattern)}
    )


def acl_bindings(settings: Settings) -> list[AclBinding]:
    """Return the ACLs of the broker's user on the upstream stand-in."""
    principal = f"User:{settings.upstream_sasl_username}"
    allow = AclPermissionType.ALLOW
    prefixed = ResourcePatternType.PREFIXED
    bindings = [
        AclBinding(ResourceType.TOPIC, prefix, prefixed, principal, "*", operation, allow)
        for prefix in alert_topic_prefixes(settings)
        for operation in (AclOperation.READ, AclOperation.DESCRIBE)
    ]
    group = settings.upstream_group_prefix or settings.gateway_group
    kind = prefixed if settings.upstream_group_prefix else ResourcePatternType.LITERAL
    bindings.append(
        AclBinding(ResourceType.GROUP, group, kind, principal, "*", AclOperation.READ, allow)
    )
    return bindings


def grant_upstream_access(settings: Settings) -> None:
    """Give the broker's user its SCRAM credential and ACLs on the running upstream.

    Idempotent: run by every ``services up --upstream``.

    Raises
    ------
    ServiceError
        If the upstream refuses either request.
    """
    admin = AdminClient({"bootstrap.servers": settings.upstream_feed_bootstrap})
    upsert = UserScramCredentialUpsertion(
        settings.upstream_sasl_username,
        ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
        upstream_client_password(settings).encode(),
    )
    try:
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(ADMIN_TIMEOUT)
        for future in admin.create_acls(acl_bindings(settings)).values():
            future.result(ADMIN_TIMEOUT)
    except KafkaException as exc:
        raise ServiceError(f"the upstream refused the broker's credential or ACLs: {exc}") from exc
