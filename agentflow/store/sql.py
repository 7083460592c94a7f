"""The SQL store: the domain parts assembled over a backend's transactions.

A backend (:mod:`~agentflow.store.sqlite`, :mod:`~agentflow.store.postgres`) supplies
connections, transactions, its migrations and its LangGraph savers; everything else is here,
written once, so both backends behave the same and one test suite covers them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agentflow.security import crypto
from agentflow.settings import get_settings
from agentflow.store import codec, migrations
from agentflow.store.accounts import AccountsMixin
from agentflow.store.base import Store
from agentflow.store.batches import BatchesMixin
from agentflow.store.catalogue import CatalogueMixin
from agentflow.store.core import Tx
from agentflow.store.runs import RunsMixin
from agentflow.store.workflows import WorkflowsMixin

log = logging.getLogger("agentflow.store")


class SQLStore(WorkflowsMixin, CatalogueMixin, RunsMixin, BatchesMixin, AccountsMixin, Store):
    """Store over any backend that provides :meth:`_transaction` and the savers."""

    #: The backend's ordered migrations.
    migrations: Sequence[migrations.Migration] = ()

    def _start(self) -> None:
        """Create or upgrade the schema; on a first start without a passphrase, the key file."""
        with self._write() as tx:
            self._lock_schema(tx)
            applied = migrations.apply(
                tx.run, tx.all, self.migrations, codec.iso(codec.now()) or ""
            )
        if applied:
            log.info("store %s: applied schema migrations %s", self.workspace_key, applied)
        if not get_settings().secret_key:
            crypto.ensure_key_file()

    def _lock_schema(self, tx: Tx) -> None:
        """Hold the lock that keeps two starting processes from migrating at once."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.workspace_key}>"
