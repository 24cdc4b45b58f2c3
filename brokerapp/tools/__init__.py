"""The tools layer: what an operator runs by hand.

The ``brokerapp`` CLI (one module per command group), the producer, ``tail``, the overview
page and the launcher of the local development services. Nothing at runtime imports it.
"""
