"""The store conformance suite: every test taking ``store`` runs on SQLite and Postgres.

The fixtures live in the root ``tests/conftest.py`` (the debugger and security tests use
them too): Postgres tests get a fresh schema of the test database (``search_path`` set
through the URL's ``options``), dropped afterwards, so they never touch other tables there.
"""
