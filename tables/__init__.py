"""Faust table declarations (RocksDB-backed in deploy, in memory in unit tests)."""
