"""LSST:UK alert broker: shared app factory, settings, codecs, survey profiles and the CLI."""

__version__ = "0.1.0"
