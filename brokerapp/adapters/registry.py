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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

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
        ``upstream_registry_url`` setting).
    """

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=REQUEST_TIMEOUT, headers={"Accept": CONTENT_TYPE}
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


def _payload(response: httpx.Response) -> dict:
    """Return the JSON error body of a response (``{"message": <text>}`` if not JSON)."""
    try:
        payload = response.json()
    except ValueError:
        return {"message": response.text}
    return payload if isinstance(payload, dict) else {"message": str(payload)}


def _message(response: httpx.Response) -> str:
    return str(_payload(response).get("message", ""))
