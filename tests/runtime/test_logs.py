"""The log writer: records reach each target at its level, masked, in order, written once
per drain; a target that fails does not stop the others."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from agentflow.logs import RedactingFormatter, _BufferedHandler


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


def record(level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("agentflow.runtime", level, __file__, 1, msg, args, None)


def stream_handler(stream: io.StringIO, level: int = logging.NOTSET) -> logging.StreamHandler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    handler.setLevel(level)
    return handler


def test_records_reach_each_target_at_its_level_in_one_write(tmp_path: Path) -> None:
    everything, warnings = CountingStream(), CountingStream()
    log_file = tmp_path / "sub.log"
    file_target = logging.FileHandler(log_file, encoding="utf-8", delay=True)  # opened on first write
    file_target.setFormatter(RedactingFormatter("%(message)s"))
    buffered = _BufferedHandler([stream_handler(everything), stream_handler(warnings, logging.WARNING), file_target])
    try:
        buffered.emit(record(logging.INFO, "run %s ok", 1))
        buffered.emit(record(logging.WARNING, "key sk-proj-abcdefghijklmnopqrstu leaked"))
        buffered.emit(record(logging.INFO, "run %s ok", 2))
        buffered.drain()
        assert everything.getvalue().splitlines() == ["INFO run 1 ok", "WARNING key *** leaked", "INFO run 2 ok"]
        assert warnings.getvalue().splitlines() == ["WARNING key *** leaked"]
        assert log_file.read_text(encoding="utf-8").splitlines() == ["run 1 ok", "key *** leaked", "run 2 ok"]
        assert everything.writes == 1 and warnings.writes == 1
        buffered.drain()  # nothing buffered: nothing written
        assert everything.writes == 1
    finally:
        buffered.close()


def test_a_failing_target_does_not_stop_the_others(monkeypatch) -> None:
    reported: list[logging.LogRecord] = []
    broken = stream_handler(BrokenStream())
    monkeypatch.setattr(broken, "handleError", reported.append)
    good = CountingStream()
    buffered = _BufferedHandler([broken, stream_handler(good)])
    try:
        buffered.emit(record(logging.ERROR, "boom"))
        buffered.drain()
        assert good.getvalue() == "ERROR boom\n"
        assert [r.getMessage() for r in reported] == ["boom"]
    finally:
        buffered.close()
