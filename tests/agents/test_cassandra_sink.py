"""The Cassandra sink agents in memory (the cases are in :mod:`sink_cases`).

The store is an in-memory object with the methods the sink calls, since Cassandra is a
server: ``tests/integration/test_stores.py`` and ``test_objects_sinks.py`` cover the real one.
"""

from agents import cassandra_sink

from .sink_cases import SinkCases


class TestCassandraSink(SinkCases):
    module = cassandra_sink
    kind = "cassandra"
