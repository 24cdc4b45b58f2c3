"""The domain layer: pure logic over decoded alerts and plain records.

Gateway schema-ID remapping, processors and chains, filters, zones, watchlists and
catalogues, object history and statistics, candidate records, light curves. It imports no
Faust, aiokafka, confluent-kafka, HTTP or database client (an import-linter contract), so
every function here is tested with plain dicts.
"""
