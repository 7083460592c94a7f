"""The run history written in groups: one transaction for the runs that end together.

Every run answered by the API is recorded (``RunRecorder.end``). One transaction per run
made the history write the dearest part of a run's bookkeeping on a busy server: measured
with ``bench/api.py``'s load on 2 workers sharing one SQLite file, leaving the write out
took a request from 2.42 to 2.16 ms of server CPU (a transaction's begin and commit, and
each process refreshing its page cache after the other's commits, are paid per group). So a
finished run's row waits for the
event loop's next turn (or until ``GROUP_ROWS`` have gathered), and the rows of every run
that finished meanwhile are written together: with 2 workers the API went from 0.64-0.67x
to 0.73x of the bare-endpoint floor's requests per second. Waiting longer (5 ms) made
bigger groups but put the write in the middle of the next request of a client that sends
one at a time (+0.24 ms p50). The caller awaits its own row, so a run is recorded before
:meth:`ApiContext.settled` lets a read of the history through; a group that fails is
written again row by row, so one bad row loses only itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

#: How long a finished run waits for others to share its transaction (0: the loop's next turn).
GROUP_S = 0.0
#: A group is written at once when it has this many rows.
GROUP_ROWS = 64


class HistoryWriter:
    """Groups run-history rows of one app (see the module docstring)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._rows: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def record(
        self, state: dict[str, Any], *, user: str | None, input: dict[str, Any] | None, workflow_version: int | None
    ) -> None:
        """Record one run (raises what recording it raised)."""
        loop = asyncio.get_running_loop()
        row = {"state": state, "user": user, "input": input, "workflow_version": workflow_version}
        if self._loop is not loop:
            if self._rows:  # an app moved to another loop (tests): write this one alone
                await self.ctx.call(self.ctx.store.record_runs, [row])
                return
            self._loop = loop
        done: asyncio.Future[None] = loop.create_future()
        self._rows.append((row, done))
        if len(self._rows) >= GROUP_ROWS:
            self._write_now()
        elif self._timer is None:
            self._timer = loop.call_later(GROUP_S, self._write_now)
        await asyncio.shield(done)

    def _write_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group, self._rows = self._rows, []
        if group:
            self.ctx.spawn(self._write(group))

    async def _write(self, group: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        store = self.ctx.store
        try:
            await self.ctx.call(store.record_runs, [row for row, _ in group])
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], exc)
                return
            for row, done in group:  # one by one: a bad row loses only itself
                try:
                    await self.ctx.call(store.record_runs, [row])
                except Exception as error:
                    _settle(done, error)
                else:
                    _settle(done, None)
            return
        for _, done in group:
            _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
