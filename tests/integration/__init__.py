"""Test tier: integration."""
