"""The base class of alert processors, the check of their options, and chain-configuration errors.

An :class:`AlertProcessor` subclass has a registry name (:attr:`AlertProcessor.name`, the
``use`` value of chain files and the key of its annotations), takes its options from the chain
file as keyword arguments (an unknown option is a :class:`ChainConfigError`) and returns from
:meth:`AlertProcessor.process` one outcome of :mod:`brokerapp.domain.processors.outcomes`, or
a list of them. It declares in :attr:`AlertProcessor.reads` what it reads of the alert, as
survey-agnostic read names (:data:`brokerapp.model.profiles.READS`: the ``AlertView``
attributes and a few profile accessors), so that a node decodes only those fields; ``None``
(the default, e.g. a plugin that does not say) means "anything": the node then decodes whole
alerts. Reading something undeclared still works, at the cost of a whole decode of that
alert. The option checkers (:func:`number_option`, :func:`string_option`,
:func:`strings_option`, :func:`flag_option`) turn a bad TOML value into a
:class:`ChainConfigError` naming the processor and the option.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from brokerapp.domain.processors.outcomes import Outcome
from brokerapp.model.alert import Alert

__all__ = [
    "AlertProcessor",
    "ChainConfigError",
    "flag_option",
    "number_option",
    "option_names",
    "string_option",
    "strings_option",
]


class ChainConfigError(ValueError):
    """A chain file, chain configuration, processor option or plugin is not usable."""


class AlertProcessor:
    """Base class of alert processors.

    A subclass sets :attr:`name`, declares its options as keyword-only parameters of
    ``__init__`` (passing any others on to ``super().__init__(**options)``, which rejects
    them) and implements :meth:`process`. A processor instance belongs to one chain and is
    called for one alert at a time; keep per-alert state out of it.

    Parameters
    ----------
    **options
        Options this class does not take: any is a :class:`ChainConfigError`.

    Attributes
    ----------
    name : str
        Registry name (the ``use`` value in chain files, the entry-point name of plugins) and
        key of the processor's annotations. Defaults to the class name.
    reads : frozenset of str or None
        Read names (:data:`brokerapp.model.profiles.READS`) of everything :meth:`process`
        reads of an alert (its view attributes, and accessors given ``alert.record_for(...)``);
        None (the default) when it may read anything (``alert.record``).

    Raises
    ------
    ChainConfigError
        If ``options`` is not empty.
    """

    name: ClassVar[str] = "AlertProcessor"
    reads: frozenset[str] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give a subclass without its own :attr:`name` its class name."""
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def __init__(self, **options: Any) -> None:
        if options:
            unknown = ", ".join(repr(key) for key in sorted(options))
            takes = ", ".join(option_names(type(self))) or "no options"
            raise ChainConfigError(f"{self.name}: unknown option(s) {unknown} (it takes: {takes})")

    def process(self, alert: Alert) -> Outcome | Sequence[Outcome]:
        """Decide what happens to one alert.

        Parameters
        ----------
        alert : Alert
            The decoded alert; ``alert.record`` is shared by the chain: do not modify it.

        Returns
        -------
        Outcome or sequence of Outcome
            :class:`Drop`, :class:`Pass` or :class:`Emit`, or a list of them.
        """
        raise NotImplementedError(f"{type(self).__name__}.process")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def option_names(cls: type[AlertProcessor]) -> list[str]:
    """List the options a processor class takes (its named ``__init__`` keyword parameters).

    Parameters
    ----------
    cls : type
        An :class:`AlertProcessor` subclass.

    Returns
    -------
    list of str
        Sorted parameter names (``**options`` excluded).
    """
    parameters = inspect.signature(cls).parameters.values()
    return sorted(
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


def number_option(processor: str, option: str, value: Any) -> float:
    """Check a numeric option.

    Parameters
    ----------
    processor : str
        Name of the processor, for the message.
    option : str
        Name of the option, for the message.
    value : Any
        The value from the chain file.

    Returns
    -------
    float
        ``value`` as a float.

    Raises
    ------
    ChainConfigError
        If ``value`` is not an int or a float (booleans are not numbers here), or is NaN.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ChainConfigError(f"{processor}: option {option!r} must be a number, not {value!r}")
    return float(value)


def string_option(processor: str, option: str, value: Any) -> str:
    """Check a string option.

    Parameters
    ----------
    processor : str
        Name of the processor, for the message.
    option : str
        Name of the option, for the message.
    value : Any
        The value from the chain file.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ChainConfigError
        If ``value`` is not a non-empty string.
    """
    if not isinstance(value, str) or not value:
        raise ChainConfigError(
            f"{processor}: option {option!r} must be a non-empty string, not {value!r}"
        )
    return value


def strings_option(processor: str, option: str, value: Any) -> tuple[str, ...]:
    """Check an option that is a list of strings.

    Parameters
    ----------
    processor : str
        Name of the processor, for the message.
    option : str
        Name of the option, for the message.
    value : Any
        The value from the chain file.

    Returns
    -------
    tuple of str
        The strings, in order.

    Raises
    ------
    ChainConfigError
        If ``value`` is a string, not a sequence, empty, or holds anything but non-empty
        strings.
    """
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or not value
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise ChainConfigError(
            f"{processor}: option {option!r} must be a non-empty list of strings, not {value!r}"
        )
    return tuple(value)


def flag_option(processor: str, option: str, value: Any) -> bool:
    """Check a true/false option.

    Parameters
    ----------
    processor : str
        Name of the processor, for the message.
    option : str
        Name of the option, for the message.
    value : Any
        The value from the chain file.

    Returns
    -------
    bool
        ``value``.

    Raises
    ------
    ChainConfigError
        If ``value`` is not a boolean.
    """
    if not isinstance(value, bool):
        raise ChainConfigError(f"{processor}: option {option!r} must be true or false")
    return value
