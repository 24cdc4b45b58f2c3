"""A small asynchronous client of the Confluent Schema Registry REST API.

The project talks to its registry only through this API (Apicurio Registry serves it under
``/apis/ccompat/v7``), so Confluent Schema Registry or Karapace can replace Apicurio by
changing the URL setting. One ``httpx.AsyncClient`` is kept open per instance (the PyPI
``AsyncSchemaRegistryClient`` opens a new one per request), and schemas fetched by ID are
cached for the life of the client: a registry ID names immutable content.

Calls used:

``GET /schemas/ids/{id}``
    Schema text by ID (:meth:`RegistryClient.get_schema`, the codecs' ``SchemaFetcher``).
``POST /subjects/{subject}/versions``
    Register (idempotent: the same schema under the same subject keeps its ID). With
    ``schema_id`` set, the Confluent IMPORT-mode body field ``id`` asks for that ID; a registry
    that ignores it (Apicurio does) assigns its own, which the caller sees in the result.
``POST /subjects/{subject}``
    Look up whether a schema is registered under a subject, and its ID.
``PUT /config/{subject}``
    Set a subject's compatibility level (:meth:`RegistryClient.set_compatibility`). Apicurio
    accepts it only once the subject exists (HTTP 404 before).

A restarted Apicurio answers HTTP before it has replayed its Kafka journal: for a few seconds
known schema IDs give 404 and known subjects 409. A 4xx answer is therefore checked against
the registry's readiness (:meth:`RegistryClient.ready`): while it is not ready the error is
raised as status 503, which every caller treats as an outage (retry), not as a verdict; once
it is ready the request is sent once more (all of these calls are idempotent) and that
answer stands.

Security (Confluent's client conventions): a registry URL may be ``https``; the CA file that
signs its certificate is the ``registry_ca_file`` / ``upstream_registry_ca_file`` setting
(without one, the system store; for the upstream, the system store plus the upstream Kafka
CA, :attr:`Settings.upstream_cafile`: ``upstream_ssl_cafile`` or the project CA
``<home>/tls/ca.pem`` when it exists). Basic-auth
credentials are ``user:password`` in ``registry_basic_auth_user_info`` /
``upstream_registry_basic_auth_user_info`` (Confluent's ``basic.auth.user.info``), or the
URL's own user-info (Confluent's ``URL`` credentials source). :func:`registry_access`
gathers them and :func:`registry_client` (or :func:`open_registry`) builds the client:
every registry client of the project is made there. The credentials are taken out of the
URL, so :attr:`RegistryClient.url` (used in messages) never shows them, and stay a
:class:`~pydantic.SecretStr` until handed to httpx.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from brokerapp.model.settings import Settings

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
#: Seconds one registry request may take.
REQUEST_TIMEOUT = 10.0


class RegistryError(RuntimeError):
    """The registry answered with an error status; ``status`` and ``code`` say which."""

    def __init__(self, status: int, code: int | None, message: str):
        super().__init__(f"registry error {status} ({code}): {message}")
        self.status = status
        self.code = code


class RegistryClient:
    """Confluent REST client with a schema-by-ID cache.

    Parameters
    ----------
    url : str
        Base URL of the Confluent-compatible API (the ``registry_url`` or
        ``upstream_registry_url`` setting), without credentials.
    verify : ssl.SSLContext or bool
        How httpx checks an ``https`` registry's certificate (True: the system store).
    auth : tuple of (str, str), optional
        Basic-auth user name and password sent with every request.

    Notes
    -----
    Build it with :func:`registry_client` or :func:`open_registry`, which apply the
    security settings.
    """

    def __init__(
        self,
        url: str,
        *,
        verify: ssl.SSLContext | bool = True,
        auth: tuple[str, str] | None = None,
    ):
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=REQUEST_TIMEOUT,
            headers={"Accept": CONTENT_TYPE},
            verify=verify,
            auth=httpx.BasicAuth(*auth) if auth else None,
        )
        self._by_id: dict[int, str] = {}

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Mapping | None = None) -> Any:
        response = await self._send(method, path, body)
        if 400 <= response.status_code < 500:
            # A registry still loading its storage answers 404 for schemas it has and 409 for
            # subjects it has. Not ready: an outage. Ready (perhaps only just): ask once more,
            # as every call here is idempotent, and take that answer as the verdict.
            if not await self.ready():
                raise RegistryError(
                    httpx.codes.SERVICE_UNAVAILABLE,
                    None,
                    f"registry not ready yet (it answered {response.status_code}: "
                    f"{_message(response)})",
                )
            response = await self._send(method, path, body)
        if response.status_code >= 400:
            payload = _payload(response)
            raise RegistryError(
                response.status_code, payload.get("error_code"), payload.get("message", "")
            )
        return response.json()

    async def _send(self, method: str, path: str, body: Mapping | None) -> httpx.Response:
        return await self._http.request(
            method,
            path,
            content=None if body is None else json.dumps(body),
            headers={"Content-Type": CONTENT_TYPE} if body is not None else None,
        )

    async def ready(self) -> bool:
        """Whether the registry has finished starting (its storage loaded).

        Asks ``/health/ready`` on the registry's host (Apicurio's Quarkus readiness check,
        which turns 200 only after its Kafka journal has been replayed). A registry without
        that endpoint (it answers 404, as Confluent Schema Registry does) counts as ready.

        Returns
        -------
        bool
            False when the check answers 5xx or cannot be reached.
        """
        parts = urlsplit(self.url)
        try:
            response = await self._http.get(f"{parts.scheme}://{parts.netloc}/health/ready")
        except httpx.TransportError:
            return False
        return response.status_code < 500

    async def get_schema(self, schema_id: int) -> str:
        """Return the schema text registered under an ID.

        Parameters
        ----------
        schema_id : int
            Registry ID.

        Returns
        -------
        str
            The schema as JSON text.

        Raises
        ------
        KeyError
            If the registry has no schema with that ID.
        httpx.TransportError
            If the registry cannot be reached.
        """
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        try:
            payload = await self._call("GET", f"/schemas/ids/{schema_id}")
        except RegistryError as exc:
            if exc.status == httpx.codes.NOT_FOUND:
                raise KeyError(f"schema ID {schema_id} unknown to {self.url}") from exc
            raise
        self._by_id[schema_id] = payload["schema"]
        return payload["schema"]

    async def register(
        self, subject: str, schema: str | Mapping, schema_id: int | None = None
    ) -> int:
        """Register a schema under a subject and return its ID.

        Parameters
        ----------
        subject : str
            Subject name, e.g. ``alerts-value`` (TopicNameStrategy).
        schema : str or mapping
            Avro schema, as JSON text or parsed JSON.
        schema_id : int, optional
            The ID asked for (Confluent IMPORT mode). Registries without IMPORT mode assign
            their own; compare the result to know.

        Returns
        -------
        int
            The ID the registry gave the schema.
        """
        text = schema if isinstance(schema, str) else json.dumps(schema)
        body: dict[str, Any] = {"schema": text, "schemaType": "AVRO"}
        if schema_id is not None:
            body["id"] = schema_id
        payload = await self._call("POST", f"/subjects/{subject}/versions", body)
        registered = int(payload["id"])
        self._by_id.setdefault(registered, text)
        return registered

    async def lookup(self, subject: str, schema: str | Mapping) -> int | None:
        """Return the ID of a schema under a subject, or None if it is not registered there.

        Parameters
        ----------
        subject : str
            Subject name.
        schema : str or mapping
            Avro schema, as JSON text or parsed JSON.

        Returns
        -------
        int or None
            The registered ID.
        """
        text = schema if isinstance(schema, str) else json.dumps(schema)
        try:
            payload = await self._call("POST", f"/subjects/{subject}", {"schema": text})
        except RegistryError as exc:
            if exc.status == httpx.codes.NOT_FOUND:
                return None
            raise
        return int(payload["id"])

    async def set_compatibility(self, subject: str, level: str) -> None:
        """Set the compatibility level of a subject.

        Parameters
        ----------
        subject : str
            Subject name.
        level : str
            ``NONE``, ``BACKWARD``, ``FORWARD``, ``FULL`` (or a ``_TRANSITIVE`` form).

        Raises
        ------
        RegistryError
            If the registry refuses (Apicurio: HTTP 404 while the subject does not exist).
        """
        await self._call("PUT", f"/config/{subject}", {"compatibility": level})

    async def compatibility(self, subject: str) -> str:
        """Return the compatibility level of a subject (the global level if it has none).

        Parameters
        ----------
        subject : str
            Subject name.

        Returns
        -------
        str
            The level, e.g. ``NONE``.
        """
        try:
            payload = await self._call("GET", f"/config/{subject}")
        except RegistryError as exc:
            if exc.status != httpx.codes.NOT_FOUND:
                raise
            payload = await self._call("GET", "/config")
        return payload.get("compatibilityLevel") or payload.get("compatibility")

    async def subjects(self) -> list[str]:
        """Return every subject the registry holds."""
        return list(await self._call("GET", "/subjects"))


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach one registry.

    Attributes
    ----------
    url : str
        Base URL without user-info.
    cafile : Path or None
        The only CA file trusted for an ``https`` URL (None: the system store).
    extra_cafile : Path or None
        A CA file trusted besides the system store (the project CA, for the upstream).
    user_info : SecretStr
        ``user:password`` for basic auth ("" for none).
    """

    url: str
    cafile: Path | None = None
    extra_cafile: Path | None = None
    user_info: SecretStr = SecretStr("")

    @property
    def auth(self) -> tuple[str, str] | None:
        """The basic-auth user name and password, or None."""
        info = self.user_info.get_secret_value()
        if not info:
            return None
        user, _, password = info.partition(":")
        return user, password

    def ssl_context(self) -> ssl.SSLContext:
        """Return the TLS context for an ``https`` URL (host names checked)."""
        if self.cafile is not None:
            return ssl.create_default_context(cafile=str(self.cafile))
        context = ssl.create_default_context()
        if self.extra_cafile is not None:
            context.load_verify_locations(cafile=str(self.extra_cafile))
        return context


def split_user_info(url: str) -> tuple[str, SecretStr]:
    """Return a URL without its user-info, and that user-info (``user:password`` or "")."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, SecretStr("")
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    info = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return urlunsplit(parts._replace(netloc=netloc)), SecretStr(info)


def url_access(url: str) -> RegistryAccess:
    """Return the access of a bare URL: its own user-info, the system store."""
    bare, info = split_user_info(url)
    return RegistryAccess(url=bare, user_info=info)


def registry_access(
    settings: Settings, side: Literal["local", "upstream"] = "local"
) -> RegistryAccess:
    """Return how to reach the local or the upstream registry from the settings.

    The ``*_basic_auth_user_info`` setting wins over the URL's user-info.

    Parameters
    ----------
    settings : Settings
        ``registry_url``, ``registry_ca_file``, ``registry_basic_auth_user_info`` and the
        ``upstream_`` ones.
    side : {"local", "upstream"}
        Which registry.
    """
    if side == "local":
        url, cafile, info = (
            settings.registry_url,
            settings.registry_ca_file,
            settings.registry_basic_auth_user_info,
        )
        extra = None
    else:
        url, cafile, info = (
            settings.upstream_registry_url,
            settings.upstream_registry_ca_file,
            settings.upstream_registry_basic_auth_user_info,
        )
        extra = settings.upstream_cafile if cafile is None else None
    bare, url_info = split_user_info(url)
    return RegistryAccess(
        url=bare,
        cafile=cafile.resolve() if cafile is not None else None,
        extra_cafile=extra,
        user_info=info if info.get_secret_value() else url_info,
    )


def open_registry(access: RegistryAccess | str) -> RegistryClient:
    """Return a client for a registry access (or a bare URL, see :func:`url_access`)."""
    if isinstance(access, str):
        access = url_access(access)
    verify: ssl.SSLContext | bool = True
    if urlsplit(access.url).scheme == "https":
        verify = access.ssl_context()
    return RegistryClient(access.url, verify=verify, auth=access.auth)


def registry_client(
    settings: Settings, side: Literal["local", "upstream"] = "local"
) -> RegistryClient:
    """Return a client of the local or the upstream registry, its security applied."""
    return open_registry(registry_access(settings, side))


def _payload(response: httpx.Response) -> dict:
    """Return the JSON error body of a response (``{"message": <text>}`` if not JSON)."""
    try:
        payload = response.json()
    except ValueError:
        return {"message": response.text}
    return payload if isinstance(payload, dict) else {"message": str(payload)}


def _message(response: httpx.Response) -> str:
    return str(_payload(response).get("message", ""))
