"""Suites are loaded by path (bench.catalog.discovery); this file only keeps pytest from mixing up
suites/conftest.py and tests/conftest.py when both folders run in one pytest call."""
