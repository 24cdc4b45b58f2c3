"""Fixtures of the agent tier: settings for in-memory apps and the registry stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from brokerapp.model.settings import Settings, load_settings

from .harness import SchemaRegistryStandIn

CHAINS = Path(__file__).parents[2] / "deploy" / "chains"
"""The deployed chain files."""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of an in-memory branch: tables in memory, state under ``tmp_path``."""
    return load_settings(
        home=tmp_path,
        store="memory://",
        app_prefix="unit",
        ssfilter_chain=CHAINS / "ssfilter.toml",
        node_chain=CHAINS / "example.toml",
    )


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> SchemaRegistryStandIn:
    """A dict-backed schema fetcher in place of the branches' registry client.

    The registry is a server; the integration tests run the branches against the real one.
    Apps built after this fixture decode through the stand-in.
    """
    stand_in = SchemaRegistryStandIn()
    monkeypatch.setattr("brokerapp.runtime.branch.registry_client", lambda settings: stand_in)
    return stand_in
