"""Chain files (TOML): reading one into a chain, and reloading it when it changes.

A chain file::

    name = "ssfilter"            # optional: defaults to the file name without suffix

    [[processor]]
    use = "magnitude_cut"        # registry name
    max_mag = 20.5               # every other key is an option of the processor

    [[processor]]
    use = "solar_system"
    solar_stream = "solar"

:func:`load_chain` reads one; :func:`chain_from_config` builds a chain from the parsed table.
Every problem (file unreadable, TOML syntax, unknown key, unknown processor, unknown, missing
or bad option, broken plugin) is a :class:`~brokerapp.domain.processors.base.ChainConfigError`
naming the file and the entry (``#<n> (<use>)``). :class:`ChainFile` holds the current chain
of one file and reloads it when the file changes (checked at most every ``poll_seconds``); a
failed reload keeps the previous chain and records the error. Only the configuration is
reloaded: changed processor code needs a worker restart. Write chain files atomically (write a
temporary file, then rename it over the old one) so that no half-written file is ever read.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brokerapp.domain.processors.base import AlertProcessor, ChainConfigError, option_names
from brokerapp.domain.processors.chains import Chain
from brokerapp.domain.processors.registry import ENTRY_POINT_GROUP, processor_classes

__all__ = ["ChainFile", "chain_from_config", "load_chain"]

logger = logging.getLogger(__name__)


_CHAIN_KEYS = ("name", "processor")


def chain_from_config(
    config: Mapping[str, Any],
    *,
    source: str = "<config>",
    default_name: str = "chain",
    registry: Mapping[str, type[AlertProcessor]] | None = None,
) -> Chain:
    """Build a chain from a parsed chain file.

    Parameters
    ----------
    config : mapping
        ``{"name": str (optional), "processor": [{"use": str, **options}, ...]}``.
    source : str
        Where the configuration comes from, for error messages (the file name).
    default_name : str
        Chain name when ``config`` has none.
    registry : mapping of str to type, optional
        Processor classes by name (default: :func:`processor_classes`).

    Returns
    -------
    Chain
        With one new processor instance per entry.

    Raises
    ------
    ChainConfigError
        Naming ``source`` and the entry, if the configuration is not a valid chain, names an
        unknown processor, gives an unknown, missing or bad option, or a plugin is broken.
    """
    if not isinstance(config, Mapping):
        raise ChainConfigError(f"{source}: a chain is a table, not {type(config).__name__}")
    unknown = sorted(set(config) - set(_CHAIN_KEYS))
    if unknown:
        raise ChainConfigError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(a chain has 'name' and [[processor]] entries)"
        )
    name = config.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ChainConfigError(f"{source}: 'name' must be a non-empty string, not {name!r}")
    entries = config.get("processor")
    if not entries:
        raise ChainConfigError(f"{source}: no [[processor]] entries")
    if not isinstance(entries, list):
        raise ChainConfigError(f"{source}: 'processor' must be an array of tables ([[processor]])")
    if registry is None:
        try:
            registry = processor_classes()
        except ChainConfigError as exc:
            raise ChainConfigError(f"{source}: {exc}") from exc
    processors = [
        _make_processor(entry, f"{source}: processor #{index}", registry)
        for index, entry in enumerate(entries, start=1)
    ]
    return Chain(processors, name)


def _make_processor(
    entry: Any, where: str, registry: Mapping[str, type[AlertProcessor]]
) -> AlertProcessor:
    """Instantiate one ``[[processor]]`` entry, every error a ChainConfigError naming it."""
    if not isinstance(entry, Mapping):
        raise ChainConfigError(f"{where}: must be a table, not {entry!r}")
    use = entry.get("use")
    if not isinstance(use, str) or not use:
        raise ChainConfigError(f'{where}: needs `use = "<processor name>"`, got {use!r}')
    where = f"{where} ({use!r})"
    cls = registry.get(use)
    if cls is None:
        raise ChainConfigError(
            f"{where}: unknown processor (known: {', '.join(sorted(registry))}; plugins add "
            f"more through the entry-point group {ENTRY_POINT_GROUP!r})"
        )
    options = {key: value for key, value in entry.items() if key != "use"}
    parameters = inspect.signature(cls).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    names = option_names(cls)
    unknown = sorted(set(options) - set(names))
    if unknown and not takes_any:
        raise ChainConfigError(
            f"{where}: unknown option(s) {', '.join(map(repr, unknown))} "
            f"(it takes: {', '.join(names) or 'no options'})"
        )
    missing = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.name not in options
    ]
    if missing:
        raise ChainConfigError(f"{where}: missing option(s) {', '.join(map(repr, missing))}")
    try:
        return cls(**options)
    except ChainConfigError as exc:
        raise ChainConfigError(f"{where}: {exc}") from exc
    except Exception as exc:
        raise ChainConfigError(f"{where}: cannot be created: {type(exc).__name__}: {exc}") from exc


def _parse_chain_file(path: Path, registry: Mapping[str, type[AlertProcessor]] | None) -> Chain:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ChainConfigError(f"{path}: cannot read chain file: {exc}") from exc
    try:
        config = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ChainConfigError(f"{path}: not UTF-8 text: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ChainConfigError(f"{path}: invalid TOML: {exc}") from exc
    return chain_from_config(config, source=str(path), default_name=path.stem, registry=registry)


def load_chain(
    path: str | os.PathLike[str], registry: Mapping[str, type[AlertProcessor]] | None = None
) -> Chain:
    """Read a chain file (TOML) and build its chain.

    Parameters
    ----------
    path : path-like
        The chain file; its name without suffix is the chain's name unless it sets ``name``.
    registry : mapping of str to type, optional
        Processor classes by name (default: :func:`processor_classes`).

    Returns
    -------
    Chain
        The chain.

    Raises
    ------
    ChainConfigError
        Naming the file (and the entry), if it cannot be read, is not valid TOML or not a
        valid chain (see :func:`chain_from_config`).
    """
    return _parse_chain_file(Path(path), registry)


class ChainFile:
    """The current chain of one chain file, reloaded when the file changes.

    The file is loaded at construction. :meth:`current`, called by the node once per batch,
    looks at the file's modification time, size and inode at most every ``poll_seconds``
    and reloads it when they changed. A reload that fails keeps the previous chain: the
    error goes to :attr:`last_error` (and the log), and the same file state is not retried
    until it changes again.

    Parameters
    ----------
    path : path-like
        The chain file.
    poll_seconds : float
        Least time between two checks of the file.

    Attributes
    ----------
    path : Path
        The chain file.
    poll_seconds : float
        Least time between two checks.
    chain : Chain
        The current chain.
    version : int
        Number of successful loads (1 after construction).
    reloads : int
        Successful reloads after the first load (``version - 1``).
    reload_failures : int
        Failed reload attempts (each changed file state counts once).
    last_error : str or None
        Error of the last reload attempt, None when the current file state is loaded.
    loaded_at : float
        Wall-clock time (``time.time()``) of the last successful load.

    Raises
    ------
    ChainConfigError
        If the file cannot be loaded at construction.
    """

    def __init__(self, path: str | os.PathLike[str], poll_seconds: float = 1.0):
        self.path = Path(path)
        self.poll_seconds = float(poll_seconds)
        self.version = 0
        self.reloads = 0
        self.reload_failures = 0
        self.last_error: str | None = None
        self._checked_at: float | None = None
        try:
            self._state: tuple[int, int, int] | None = self._file_state()
        except OSError as exc:
            raise ChainConfigError(f"{self.path}: cannot read chain file: {exc}") from exc
        self.chain: Chain = _parse_chain_file(self.path, None)
        self.version = 1
        self.loaded_at = time.time()

    def _file_state(self) -> tuple[int, int, int]:
        stat = os.stat(self.path)
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def current(self, now: float | None = None) -> Chain:
        """Return the current chain, first reloading it if the file changed.

        Parameters
        ----------
        now : float, optional
            The caller's clock (default ``time.monotonic()``); the file is looked at when
            ``poll_seconds`` have passed on it since the last look (or it went backwards).

        Returns
        -------
        Chain
            The newest chain that loaded.
        """
        if now is None:
            now = time.monotonic()
        checked_at = self._checked_at
        if checked_at is None or not 0.0 <= now - checked_at < self.poll_seconds:
            self.check(now)
        return self.chain

    def check(self, now: float | None = None) -> bool:
        """Look at the file now and reload it if it changed.

        Parameters
        ----------
        now : float, optional
            The caller's clock (default ``time.monotonic()``), remembered as the last look.

        Returns
        -------
        bool
            Whether a new chain was loaded.
        """
        self._checked_at = time.monotonic() if now is None else now
        try:
            state: tuple[int, int, int] | None = self._file_state()
            error = None
        except OSError as exc:
            state = None
            error = ChainConfigError(f"{self.path}: cannot read chain file: {exc}")
        if state == self._state:
            return False
        self._state = state
        if error is None:
            try:
                chain = _parse_chain_file(self.path, None)
            except ChainConfigError as exc:
                error = exc
        if error is not None:
            self.reload_failures += 1
            self.last_error = str(error)
            logger.warning(
                "chain file %s: reload failed, keeping chain %r version %d: %s",
                self.path,
                self.chain.name,
                self.version,
                error,
            )
            return False
        self.chain = chain
        self.version += 1
        self.reloads += 1
        self.last_error = None
        self.loaded_at = time.time()
        logger.info(
            "chain file %s: loaded chain %r version %d: %s",
            self.path,
            chain.name,
            self.version,
            [p.name for p in chain.processors],
        )
        return True

    def __repr__(self) -> str:
        return f"ChainFile({str(self.path)!r}, version={self.version})"
