"""The vocabulary every layer speaks: records and their key, cases, settings, devices, errors.

Nothing here does I/O or imports a framework; every other package builds on it.
"""
