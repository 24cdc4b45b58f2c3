"""Alert processors and the chains that run them (Stage 1 processing nodes).

A processing node decodes each alert once and hands the same
:class:`~brokerapp.model.alert.Alert` to every processor of its chain. This package is pure:
no Kafka, no asyncio. The node (a Faust agent) builds ``Alert.of(record, schema_id)``, calls
:meth:`Chain.run` and sends what the :class:`ChainResult` says. Its modules, each documenting
its part:

- :mod:`~brokerapp.domain.processors.outcomes`: what a processor returns, :class:`Drop`,
  :class:`Pass` or :class:`Emit` (or a list of them), and what each does to the chain.
- :mod:`~brokerapp.domain.processors.base`: :class:`AlertProcessor`, the base class (registry
  name, options as keyword arguments), the option checkers and :class:`ChainConfigError`.
- :mod:`~brokerapp.domain.processors.builtin`: the built-in processors ``solar_system``,
  ``magnitude_cut``, ``annotate_view``, ``emit_annotations`` and ``catalogue_match``.
- :mod:`~brokerapp.domain.processors.registry`: :func:`processor_classes`, the built-ins and
  the plugins of the entry-point group ``brokerapp.processors`` (:data:`ENTRY_POINT_GROUP`).
- :mod:`~brokerapp.domain.processors.chains`: :class:`Chain`, :class:`ChainResult` and
  :class:`ProcessorError` (a processor raised; the node dead-letters the alert).
- :mod:`~brokerapp.domain.processors.chainfiles`: the TOML chain-file format,
  :func:`load_chain`, :func:`chain_from_config` and :class:`ChainFile` (reloaded on change).

Everything public is importable from this package; a plugin writes
``from brokerapp.domain.processors import AlertProcessor, Pass`` and
``from brokerapp.model.alert import Alert``.
"""

from __future__ import annotations

from brokerapp.domain.processors.base import (
    AlertProcessor,
    ChainConfigError,
    flag_option,
    number_option,
    option_names,
    string_option,
    strings_option,
)
from brokerapp.domain.processors.builtin import (
    BUILTIN_PROCESSORS,
    DEFAULT_VIEW_FIELDS,
    AnnotateView,
    CatalogueMatch,
    EmitAnnotations,
    MagnitudeCut,
    SolarSystem,
)
from brokerapp.domain.processors.chainfiles import ChainFile, chain_from_config, load_chain
from brokerapp.domain.processors.chains import Chain, ChainResult, ProcessorError
from brokerapp.domain.processors.outcomes import Drop, Emit, Outcome, Pass
from brokerapp.domain.processors.registry import ENTRY_POINT_GROUP, processor_classes
from brokerapp.model.alert import Alert

__all__ = [
    "BUILTIN_PROCESSORS",
    "DEFAULT_VIEW_FIELDS",
    "ENTRY_POINT_GROUP",
    "Alert",
    "AlertProcessor",
    "AnnotateView",
    "CatalogueMatch",
    "Chain",
    "ChainConfigError",
    "ChainFile",
    "ChainResult",
    "Drop",
    "Emit",
    "EmitAnnotations",
    "MagnitudeCut",
    "Outcome",
    "Pass",
    "ProcessorError",
    "SolarSystem",
    "chain_from_config",
    "flag_option",
    "load_chain",
    "number_option",
    "option_names",
    "processor_classes",
    "string_option",
    "strings_option",
]
