"""One line, exit status 1, when a server a command needs does not answer.

A command that needs Kafka is decorated with :func:`needs_kafka`. Before it runs, a metadata
request asks the cluster it would use (the command's ``BOOTSTRAP`` argument, else the
upstream cluster with ``--upstream``, else the local one): a refused connection ends the
wait at once, a server that accepts but does not reply is given ``cli_connect_timeout``
seconds, where the clients alone would retry for 30 s. While the command runs, a client's
"server unreachable" error (confluent-kafka, aiokafka, the registry's httpx) becomes the
same kind of line. Each is one line on stderr, no traceback, naming the server, its address
and how to start the local servers, e.g.::

    Error: Kafka at kafka.example.org:9092 did not answer (Connect to
    ipv4#10.0.0.7:9092 failed: Connection refused); start the local servers with `make services`
    Error: upstream Kafka at kafka.example.org:9192 did not answer within 5 s (no reply); ...

(each one line on the terminal). The store commands report each store in a line of their own
(:func:`store_unavailable`), since one store may answer while the other does not.

Client-library log records go to Python loggers: the probe's librdkafka logger is
``librdkafka`` (confluent-kafka's ``logger`` setting; librdkafka's own default writes
``%3|...|FAIL|`` lines straight to stderr). Those loggers and aiokafka's, the database drivers'
and httpx's print WARNING and above on stderr only with ``brokerapp -v``
(:func:`configure_client_logging`); otherwise they print nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.common import store_where

__all__ = [
    "CLIENT_LOGGERS",
    "HINT",
    "LIBRDKAFKA_LOGGER",
    "ServerUnreachable",
    "configure_client_logging",
    "kafka_name",
    "needs_kafka",
    "probe_kafka",
    "reported",
    "store_unavailable",
]

#: How to start the servers, the end of every "did not answer" line.
HINT = "start the local servers with `make services`"
#: Name of the Python logger librdkafka's log lines are routed to.
LIBRDKAFKA_LOGGER = "librdkafka"
#: Loggers of the client libraries: silent, or WARNING and above on stderr with ``-v``.
CLIENT_LOGGERS = (
    LIBRDKAFKA_LOGGER,
    "aiokafka",
    "cassandra",
    "aiomysql",
    "httpx",
    "httpcore",
)
#: librdkafka error codes (names) meaning "no broker answered".
_KAFKA_DOWN = frozenset({"_TRANSPORT", "_TIMED_OUT", "_ALL_BROKERS_DOWN", "_RESOLVE"})
#: MariaDB client error numbers meaning "no server there": cannot connect, gone, lost.
_MARIADB_DOWN = frozenset({2002, 2003, 2006, 2013})
#: Seconds of each metadata request of the probe (it repeats them up to the timeout).
_PROBE_STEP = 0.25
#: Least ``socket.connection.setup.timeout.ms`` librdkafka accepts.
_LIBRDKAFKA_MIN_SETUP_MS = 1000
#: Name given to the handlers added here, so a second configuration replaces them.
_HANDLER_NAME = "brokerapp-cli"

F = TypeVar("F", bound=Callable[..., Any])


class ServerUnreachable(click.ClickException):
    """A server did not answer: printed by click as one ``Error:`` line, exit status 1.

    Parameters
    ----------
    server : str
        What it is, e.g. ``Kafka``, ``upstream schema registry``.
    address : str
        Where it was asked (bootstrap servers, URL).
    reason : str
        The client's own words for what went wrong.
    timeout : float, optional
        How long it was given, when the wait was ours.
    """

    def __init__(self, server: str, address: str, reason: str, timeout: float | None = None):
        within = f" within {timeout:g} s" if timeout is not None else ""
        super().__init__(f"{server} at {address} did not answer{within} ({reason}); {HINT}")
        self.server = server
        self.address = address


def kafka_name(settings: Settings, bootstrap: str) -> str:
    """Return how to call the cluster at ``bootstrap``: ``Kafka`` or ``upstream Kafka``."""
    if bootstrap != settings.kafka_bootstrap and bootstrap in (
        settings.upstream_bootstrap,
        settings.upstream_feed_bootstrap,
    ):
        return "upstream Kafka"
    return "Kafka"


def _registry_name(settings: Settings, url: str) -> tuple[str, str]:
    """Return (name, base URL) of the registry that ``url`` belongs to."""
    from brokerapp.adapters.registry import split_user_info  # URLs without credentials

    local = split_user_info(settings.registry_url)[0]
    upstream = split_user_info(settings.upstream_registry_url)[0]
    for name, base in (("schema registry", local), ("upstream schema registry", upstream)):
        if url.startswith(base.rstrip("/")):
            return name, base
    return "schema registry", url or local


def _one_line(text: str) -> str:
    """Return ``text`` on one line, without librdkafka's broker prefix and state suffix.

    librdkafka says ``host:9092/bootstrap: Connect to ... failed: Connection refused
    (after 0ms in state CONNECT)``; the address is in the message already.
    """
    text = re.sub(r"^\S+/(bootstrap|\d+): ", "", text.strip())
    text = re.sub(r"\s*\(after \d+ms in state \w+\)", "", text)
    return " ".join(text.split())


def probe_kafka(settings: Settings, bootstrap: str) -> None:
    """Ask the cluster at ``bootstrap`` for its metadata, waiting ``cli_connect_timeout``.

    The metadata request is repeated in short steps until it is answered, the timeout is
    over, or librdkafka reports every bootstrap broker down (a refused connection), which
    ends the wait at once.

    Parameters
    ----------
    settings : Settings
        The timeout, and which cluster is local or upstream (for the message).
    bootstrap : str
        Bootstrap servers.

    Raises
    ------
    ServerUnreachable
        If no broker answered; the reason is librdkafka's last connection error, and the
        message gives the timeout when the whole of it was waited.
    click.ClickException
        If a broker answered with an error (one line as well).
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    timeout = settings.cli_connect_timeout
    seen: list[Any] = []
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "logger": logging.getLogger(LIBRDKAFKA_LOGGER),
        "error_cb": seen.append,
        "socket.connection.setup.timeout.ms": max(_LIBRDKAFKA_MIN_SETUP_MS, int(timeout * 1000)),
    }
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout
    try:
        while True:
            step = min(_PROBE_STEP, max(0.0, deadline - time.monotonic()))
            try:
                admin.list_topics(timeout=step)
                return
            except KafkaException as exc:
                admin.poll(0)  # serves the error callbacks (and log lines) queued meanwhile
                error = exc.args[0]
                refused = any(e.name() == "_ALL_BROKERS_DOWN" for e in seen)
                if error.name() in _KAFKA_DOWN and not refused and time.monotonic() < deadline:
                    continue
                causes = [e for e in seen if e.name() != "_ALL_BROKERS_DOWN"]
                name = kafka_name(settings, bootstrap)
                if error.name() in _KAFKA_DOWN:
                    reason = _one_line(causes[-1].str()) if causes else "no reply"
                    waited = None if refused else timeout
                    raise ServerUnreachable(name, bootstrap, reason, waited) from None
                reason = _one_line(error.str())
                raise click.ClickException(f"{name} at {bootstrap}: {reason}") from None
    finally:
        admin.poll(0)


def _kafka_down(exc: BaseException) -> str | None:
    """Return the reason if ``exc`` is a Kafka client's "no broker answered", else None."""
    confluent = sys.modules.get("confluent_kafka")  # an error of a library never imported
    aiokafka_errors = sys.modules.get("aiokafka.errors")  # cannot have been raised
    if confluent is not None and isinstance(exc, confluent.KafkaException):
        error = exc.args[0] if exc.args else None
        if isinstance(error, confluent.KafkaError) and error.name() in _KAFKA_DOWN:
            return _one_line(error.str())
    if aiokafka_errors is not None and isinstance(exc, aiokafka_errors.KafkaConnectionError):
        return _one_line(str(exc))
    return None


def _unreachable(settings: Settings, bootstrap: str, exc: BaseException) -> Exception | None:
    """Return the one-line error for a client's "server unreachable" ``exc``, else None."""
    reason = _kafka_down(exc)
    if reason is not None:
        return ServerUnreachable(kafka_name(settings, bootstrap), bootstrap, reason)
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.TransportError):
        try:
            url = str(exc.request.url)
        except RuntimeError:  # an error raised without its request
            url = ""
        name, base = _registry_name(settings, url)
        return ServerUnreachable(name, base, _one_line(f"{type(exc).__name__}: {exc}"))
    return None


@contextlib.contextmanager
def reported(settings: Settings, bootstrap: str) -> Iterator[None]:
    """Turn a client's "server unreachable" error inside the block into one line.

    Kafka errors (confluent-kafka, aiokafka) name the cluster at ``bootstrap``; registry
    (httpx) errors the registry their request went to. Other exceptions pass unchanged.

    Parameters
    ----------
    settings : Settings
        Addresses of the local and upstream servers.
    bootstrap : str
        The Kafka cluster the block talks to.

    Raises
    ------
    ServerUnreachable
        In place of the client's error.
    """
    try:
        yield
    except click.ClickException:
        raise
    except Exception as exc:
        mapped = _unreachable(settings, bootstrap, exc)
        if mapped is None:
            raise
        raise mapped from exc


def _bootstrap_of(settings: Settings, params: dict[str, Any]) -> str:
    """Return the cluster a command talks to, from its ``bootstrap`` or ``upstream`` parameter."""
    if params.get("bootstrap"):
        return str(params["bootstrap"])
    return settings.upstream_feed_bootstrap if params.get("upstream") else settings.kafka_bootstrap


def needs_kafka(command: F) -> F:
    """Decorate a click command callback (put it right above ``def``) that needs Kafka.

    The cluster is the command's ``bootstrap`` parameter if it has one, else the upstream
    cluster when its ``upstream`` flag is set, else the local one. The command first probes
    it (:func:`probe_kafka`; a group that goes on to a sub-command leaves that to the
    sub-command) and then runs inside :class:`reported`.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        settings = ctx.find_object(Settings)
        if settings is None:  # called outside `brokerapp` and without obj=settings
            return command(*args, **kwargs)
        bootstrap = _bootstrap_of(settings, kwargs)
        if ctx.invoked_subcommand is None:
            probe_kafka(settings, bootstrap)
        with reported(settings, bootstrap):
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _causes(exc: BaseException) -> list[BaseException]:
    """Return ``exc`` and the exceptions it was raised from or during, innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        if isinstance(current, asyncio.CancelledError):  # how asyncio.timeout stops a wait
            break
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _store_down(exc: BaseException) -> bool:
    """Whether a store error was caused by the server not answering (not e.g. a held lock)."""
    pymysql_err = sys.modules.get("pymysql.err")
    cassandra = sys.modules.get("cassandra")
    cluster = sys.modules.get("cassandra.cluster")
    for cause in _causes(exc)[1:]:
        if isinstance(cause, OSError):
            return True
        if pymysql_err is not None and isinstance(cause, pymysql_err.OperationalError):
            if cause.args and cause.args[0] in _MARIADB_DOWN:
                return True
        if cluster is not None and isinstance(cause, cluster.NoHostAvailable):
            return True
        if cassandra is not None and isinstance(cause, cassandra.OperationTimedOut):
            return True
    return False


def _words(exc: BaseException) -> str:
    """Return what an error says: the system's words for an OS error, else its message."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    return str(exc) or type(exc).__name__


def _reason(exc: BaseException) -> str:
    """Return the innermost cause's words (for the driver's "no host" its hosts' errors)."""
    root = _causes(exc)[-1]
    errors = getattr(root, "errors", None)
    if isinstance(errors, dict) and errors:
        return _one_line("; ".join(dict.fromkeys(_words(e) for e in errors.values())))
    return _one_line(_words(root))


def store_unavailable(settings: Settings, kind: str, exc: BaseException) -> str:
    """Return the one line a store command prints when a store is unavailable.

    Parameters
    ----------
    settings : Settings
        Where the store is.
    kind : str
        ``mariadb`` or ``cassandra``.
    exc : BaseException
        The ``StoreUnavailable`` raised.

    Returns
    -------
    str
        ``<kind>: unavailable: <Name> (<where>) did not answer (<reason>); <HINT>`` when the
        server did not answer, else ``<kind>: unavailable (<where>): <exc>``.
    """
    where = store_where(settings, kind)
    if not _store_down(exc):
        return f"{kind}: unavailable ({where}): {_one_line(str(exc))}"
    name = {"mariadb": "MariaDB", "cassandra": "Cassandra"}.get(kind, kind)
    return f"{kind}: unavailable: {name} ({where}) did not answer ({_reason(exc)}); {HINT}"


def configure_client_logging(verbose: bool) -> None:
    """Send the client libraries' log records to stderr (WARNING and above) or nowhere.

    Parameters
    ----------
    verbose : bool
        True for ``brokerapp -v``.
    """
    for name in CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        handler: logging.Handler
        if verbose:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))
        else:
            handler = logging.NullHandler()
        handler.set_name(_HANDLER_NAME)
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
