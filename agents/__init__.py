"""Faust agents, one module per processing branch, each launched as its own worker."""
