"""Fixtures of the integration tier: the real services started by `brokerapp services up`.

`make test` starts Kafka and the registries (local and upstream) before pytest runs and stops
them afterwards; these fixtures only check that they answer and hand out unique topic names.
"""

import re
import uuid

import pytest

from brokerapp.model.settings import load_settings
from brokerapp.tools.services import ServiceError, Services


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def services(settings):
    svc = Services(settings)
    planned = svc.planned()
    if not {"kafka-local-1", "registry-local"} <= {s.name for s in planned}:
        pytest.fail("no services set up: run `brokerapp services up --upstream` (make test does)")
    try:
        svc.wait_ready(planned)
    except ServiceError as exc:
        pytest.fail(f"services not answering: {exc}")
    return svc


@pytest.fixture
def unique_topic(request):
    """A topic name no other test (or earlier run) uses."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:60]
    return f"test-{stem}-{uuid.uuid4().hex[:8]}"
