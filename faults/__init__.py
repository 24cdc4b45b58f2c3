"""Fault injection against the real services: ``python -m faults`` (``make faults``).

Each scenario runs the broker's own workers (``faust -A agents.<x> worker``, in subprocesses,
as :mod:`tests.integration.workers` runs them) on names of its own -- app ids, topics,
upstream daily topics, a MariaDB database, a Cassandra keyspace, all under one unique prefix
-- feeds them the real sample alerts of ``tests/data`` looped with fresh alert IDs, injects
one kind of fault, and then reads every output back (Kafka topics and database tables) and
compares alert IDs with what it injected:

``a`` (:mod:`faults.kill_workers`)
    ``kill -9`` of each worker of the chain in turn, mid-stream, and a restart.
``b`` (:mod:`faults.broker_loss`)
    One broker of a separate three-broker cluster killed mid-run, then brought back.
``c`` (:mod:`faults.registry_outage`)
    The local schema registry stopped while the gateway has new schemas to register.
``d`` (:mod:`faults.mutated`)
    Ten thousand mutated messages mixed into a real stream in the local buffer.
``e`` (:mod:`faults.database_outage`)
    MariaDB, then Cassandra, stopped while candidates flow into the sinks.

Every scenario gives a :class:`faults.common.Result` (injected, processed, dead-lettered,
lost and duplicated counts and its checks); ``python -m faults`` prints them as one table and
exits 1 when any scenario lost something or failed a check.
"""
