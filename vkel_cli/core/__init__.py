"""The contract and the process rules: records, their validation, errors, signals and pipes, registries,
the type hierarchy, boxes. Imports nothing outside core/ (tests/test_layout.py)."""
