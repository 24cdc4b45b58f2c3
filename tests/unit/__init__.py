"""Test tier: unit."""
