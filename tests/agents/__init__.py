"""Test tier: agents."""
