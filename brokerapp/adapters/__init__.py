"""The adapters layer: clients of the servers the broker talks to.

The schema registry (Confluent REST API), Kafka administration and topic descriptions, the
MariaDB and Cassandra stores behind one interface, their table schemas and migrations, and
SQL/CQL identifier quoting. Imports the domain, wire and model layers.
"""
