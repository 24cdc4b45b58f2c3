"""The processor registry: built-in processors and those other distributions add as plugins.

:func:`processor_classes` maps registry names to classes: the built-ins
(:data:`~brokerapp.domain.processors.builtin.BUILTIN_PROCESSORS`) and every entry point of the
group ``brokerapp.processors`` (:data:`ENTRY_POINT_GROUP`) of the installed distributions,
e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points."brokerapp.processors"]
    tag_bright = "my_plugin:TagBright"

The entry point's name must be the class's
:attr:`~brokerapp.domain.processors.base.AlertProcessor.name`. An entry point that cannot be
loaded, is not an ``AlertProcessor`` subclass or clashes with another name is a
:class:`~brokerapp.domain.processors.base.ChainConfigError`; none is skipped silently. A
plugin imports what it needs from :mod:`brokerapp.domain.processors` and the alert from
:mod:`brokerapp.model.alert`.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from brokerapp.domain.processors.base import AlertProcessor, ChainConfigError
from brokerapp.domain.processors.builtin import BUILTIN_PROCESSORS

__all__ = ["ENTRY_POINT_GROUP", "processor_classes"]

ENTRY_POINT_GROUP = "brokerapp.processors"
"""Entry-point group through which other distributions add processors."""
_PUBLIC_PACKAGE = __name__.rpartition(".")[0]
"""Where built-ins are imported from (``brokerapp.domain.processors``), for messages."""


def processor_classes() -> dict[str, type[AlertProcessor]]:
    """Map every available processor name to its class.

    Entry points are looked up (and their modules imported) on every call, so a chain
    (re)load sees plugins installed since the worker started.

    Returns
    -------
    dict of str to type
        The built-ins (:data:`BUILTIN_PROCESSORS`) and the entry points of group
        :data:`ENTRY_POINT_GROUP`.

    Raises
    ------
    ChainConfigError
        If an entry point cannot be loaded, is not an :class:`AlertProcessor` subclass, is not
        named after its class's :attr:`~AlertProcessor.name`, or has the name of another
        processor.
    """
    classes: dict[str, type[AlertProcessor]] = {}
    sources: dict[str, str] = {}
    for cls in BUILTIN_PROCESSORS:
        classes[cls.name] = cls
        sources[cls.name] = f"built-in {_PUBLIC_PACKAGE}.{cls.__qualname__}"
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        dist = entry.dist.name if entry.dist is not None else "unknown distribution"
        where = f"entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP}, {dist})"
        try:
            loaded = entry.load()
        except Exception as exc:
            raise ChainConfigError(
                f"{where} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, AlertProcessor)):
            raise ChainConfigError(f"{where} is not an AlertProcessor subclass: {loaded!r}")
        if loaded.name != entry.name:
            raise ChainConfigError(
                f"{where}: the class is named {loaded.name!r}; set its `name` to {entry.name!r}"
            )
        if entry.name in classes and classes[entry.name] is not loaded:
            raise ChainConfigError(
                f"processor name {entry.name!r} is taken twice: by {sources[entry.name]} "
                f"and by {where}"
            )
        classes[entry.name] = loaded
        sources[entry.name] = where
    return classes
