"""Test helpers shared across test modules (fixtures live in tests/conftest.py)."""
