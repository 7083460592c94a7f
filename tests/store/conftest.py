"""The store conformance fixtures: every test taking ``store`` runs on SQLite and Postgres.

Postgres tests get a fresh schema of the test database (``search_path`` set through the
URL's ``options``), dropped afterwards, so they never touch other tables there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentflow.store import Store, open_store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
