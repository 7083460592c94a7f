"""``batch run|list|status|results|resume|cancel|compare`` and ``worker`` (spec section 13).

Thin adapters over :mod:`agentflow.batch`. ``batch run`` writes ``batch <BATCH_ID>`` to
stderr as soon as the batch exists, then a progress bar there (rows done, failed, running,
waiting on a queue), and when the batch ends one JSON line per row, in row order, to
``--out`` or stdout. Exit codes: 0 every row ran (some may have failed: see each row's
``status``), 1 the batch could not finish, 2 invalid input (then stdout holds only the
section 9 error). Each row's own run summary is not logged (the rows are in the batch's
results); set ``LOG_LEVEL=DEBUG`` to see them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from agentflow.cli.output import EXIT_FAILED, EXIT_OK, print_json
from agentflow.errors import ValidationError


def add_commands(sub: argparse._SubParsersAction) -> None:
    batch = sub.add_parser("batch", help="run a workflow over every row of a dataset; follow and compare batches")
    bsub = batch.add_subparsers(dest="batch_command", metavar="SUBCOMMAND", required=True)

    p = bsub.add_parser("run", help="run a workflow over a CSV or JSON Lines file")
    p.add_argument("workflow", help="a workflow JSON file, or the id of a saved workflow")
    p.add_argument("--data", required=True, help="rows: a .csv file with a header, or a .jsonl file of objects")
    p.add_argument("--version", type=int, help="version of a saved workflow (default: latest)")
    p.add_argument("--column", default="user_input", help="the field that becomes user_input (default user_input)")
    p.add_argument("--backend", choices=("local", "celery"), default="local",
                   help="local: this process; celery: python -m agentflow worker processes")
    p.add_argument("--concurrency", type=int, default=100,
                   help="rows at once (local), or inside one worker task (celery); default 100")
    p.add_argument("--subqueue", default="batch", help='queue subqueue of every call (default "batch")')
    p.add_argument("--expected", metavar="COLUMN", help="the field holding each row's expected value")
    p.add_argument("--scorer", help="exact (default), contains, regex or json:PATH")
    p.add_argument("--output-key", default="final_output", help="the state key scored and reported")
    p.add_argument("--chunk-size", type=int, help="rows per Celery task (default: automatic, at most 50)")
    p.add_argument("--queue", help="Celery queue name (default AGENTFLOW_CELERY_QUEUE or agentflow-batch)")
    p.add_argument("--out", help="write the row lines here instead of stdout")
    p.add_argument("--detach", action="store_true", help="celery only: print the batch id and return")
    p.set_defaults(handler=cmd_run)

    p = bsub.add_parser("list", help="batches, newest first, with their progress")
    p.add_argument("--workflow", help="only this workflow's batches")
    p.add_argument("--status", help="only batches with this status")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=cmd_list)

    p = bsub.add_parser("status", help="one batch's progress as a JSON object")
    p.add_argument("batch_id")
    p.set_defaults(handler=cmd_status)

    p = bsub.add_parser("results", help="a batch's row lines, in row order")
    p.add_argument("batch_id")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--out", help="write them here instead of stdout")
    p.set_defaults(handler=cmd_results)

    p = bsub.add_parser("resume", help="run the rows of a batch not yet recorded")
    p.add_argument("batch_id")
    p.add_argument("--out", help="write the row lines here instead of stdout")
    p.add_argument("--detach", action="store_true", help="celery only: return once rows are handed out")
    p.set_defaults(handler=cmd_resume)

    p = bsub.add_parser("cancel", help="stop handing out a batch's rows (running rows finish)")
    p.add_argument("batch_id")
    p.set_defaults(handler=cmd_cancel)

    p = bsub.add_parser("compare", help="two batches row by row, with a summary")
    p.add_argument("batch_a")
    p.add_argument("batch_b")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("worker", help="a Celery worker for batches of the celery backend")
    p.add_argument("--concurrency", type=int, help="pool processes (default: one per CPU)")
    p.add_argument("--pool", choices=("prefork", "threads", "solo"), default="prefork")
    p.add_argument("--queue", help="Celery queue(s) to take chunks from, comma-separated "
                                   "(default: AGENTFLOW_CELERY_QUEUE)")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--hostname", help="the worker's node name (Celery's -n)")
    p.set_defaults(handler=cmd_worker)


def _quiet_runs() -> None:
    """One INFO line per row would bury the progress bar; rows are in the batch results."""
    if logging.getLogger("agentflow").getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("agentflow.runtime").setLevel(logging.WARNING)


def _store() -> Any:
    from agentflow.store import default_store

    return default_store()


def _user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _workflow(ref: str, version: int | None, store: Any) -> tuple[Any, int | None]:
    path = Path(ref)
    if path.exists() or ref.endswith(".json"):
        if version is not None:
            raise ValidationError("--version applies to a saved workflow, not a file",
                                  errors=[{"path": "--version", "message": "not for a file"}])
        return path, None
    saved = store.get_workflow(ref, version=version)
    return saved["document"], saved["version"]


class ProgressBar:
    """Rows done, failed, running and waiting on a queue, on stderr: redrawn in place on a
    terminal, a line every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last = 0.0
        self._last_text = ""

    def render(self, c: dict[str, Any]) -> str:
        total = max(int(c["total"]), 1)
        finished = int(c["done"]) + int(c["failed"])
        filled = int(self.width * finished / total)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        pending = int(c["pending"]) + int(c.get("dispatched", 0))
        return (
            f"[{'#' * filled}{'-' * (self.width - filled)}] {finished}/{c['total']} "
            f"done {c['done']}  failed {c['failed']}  running {c['running']}  pending {pending}  "
            f"waiting on a queue {c.get('waiting', 0)}  {finished / elapsed:.0f} rows/s"
        )

    def __call__(self, counts: dict[str, Any]) -> None:
        now = time.monotonic()
        finished = counts["status"] not in ("queued", "running")
        if not finished and now - self._last < (0.2 if self.tty else 2.0):
            return
        text = self.render(counts)
        if text == self._last_text and not finished:
            return
        self._last, self._last_text = now, text
        if self.tty:
            self.stream.write("\r" + text + ("\n" if finished else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _write_lines(rows: list[dict[str, Any]], out: str | None, fmt: str = "jsonl") -> None:
    from agentflow.batch.export import to_csv, to_jsonl

    text = to_csv(rows) if fmt == "csv" else to_jsonl(rows)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _finish(store: Any, batch_id: str, counts: dict[str, Any], out: str | None) -> int:
    from agentflow.batch import batch_results

    _write_lines(batch_results(batch_id, store=store), out)
    if counts["status"] == "finished":
        return EXIT_OK
    sys.stderr.write(f"batch {batch_id} ended {counts['status']} before every row ran; "
                     f"`python -m agentflow batch resume {batch_id}` runs the rest\n")
    return EXIT_FAILED


def _follow(store: Any, batch_id: str, backend: str, runner: Any) -> dict[str, Any] | None:
    try:
        return runner(ProgressBar())
    except KeyboardInterrupt:
        if backend == "celery":
            sys.stderr.write(f"\nstopped waiting; batch {batch_id} goes on on the workers: "
                             f"`python -m agentflow batch status {batch_id}`\n")
        else:
            sys.stderr.write(f"\nbatch {batch_id} interrupted; `python -m agentflow batch resume {batch_id}` "
                             "runs the rest\n")
        raise


def cmd_run(args: argparse.Namespace) -> int:
    from agentflow.batch import create_batch, execute_batch

    _quiet_runs()
    if args.detach and args.backend != "celery":
        raise ValidationError("--detach needs --backend celery (a local batch runs in this process)",
                              errors=[{"path": "--detach", "message": "celery backend only"}])
    store = _store()
    workflow, version = _workflow(args.workflow, args.version, store)
    batch = create_batch(
        workflow,
        args.data,
        store=store,
        user=_user(),
        workflow_version=version,
        column=args.column,
        backend=args.backend,
        concurrency=args.concurrency,
        subqueue=args.subqueue,
        expected=args.expected,
        scorer=args.scorer,
        output_key=args.output_key,
        chunk_size=args.chunk_size,
        queue=args.queue,
    )
    batch_id = batch["batch_id"]
    sys.stderr.write(f"batch {batch_id}\n")
    sys.stderr.flush()
    if args.detach:
        execute_batch(batch_id, store=store, detach=True)
        sys.stdout.write(batch_id + "\n")
        return EXIT_OK
    counts = _follow(store, batch_id, args.backend,
                     lambda bar: execute_batch(batch_id, store=store, progress=bar))
    assert counts is not None
    return _finish(store, batch_id, counts, args.out)


def cmd_resume(args: argparse.Namespace) -> int:
    from agentflow.batch import resume_batch

    _quiet_runs()
    store = _store()
    batch = store.get_batch(args.batch_id, include_document=False)
    if args.detach and batch["backend"] != "celery":
        raise ValidationError("--detach needs a batch of the celery backend",
                              errors=[{"path": "--detach", "message": "celery backend only"}])
    sys.stderr.write(f"batch {args.batch_id}\n")
    if args.detach:
        resume_batch(args.batch_id, store=store, detach=True)
        sys.stdout.write(args.batch_id + "\n")
        return EXIT_OK
    counts = _follow(store, args.batch_id, batch["backend"],
                     lambda bar: resume_batch(args.batch_id, store=store, progress=bar))
    assert isinstance(counts, dict)
    return _finish(store, args.batch_id, counts, args.out)


def cmd_list(args: argparse.Namespace) -> int:
    from agentflow.batch.service import public_status

    rows = _store().list_batches(workflow=args.workflow, status=args.status, limit=args.limit)
    out = []
    for b in rows:
        item = public_status(b)
        item.pop("waiting", None)
        item.update(workflow_version=b["workflow_version"], backend=b["backend"], dataset=b["dataset"],
                    user=b["user"], created_at=b["created_at"], finished_at=b["finished_at"])
        out.append(item)
    print_json(out)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from agentflow.batch import batch_status

    sys.stdout.write(json.dumps(batch_status(args.batch_id, store=_store())) + "\n")
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    from agentflow.batch import batch_results

    _write_lines(batch_results(args.batch_id, store=_store()), args.out, args.format)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    from agentflow.batch import cancel_batch

    sys.stdout.write(json.dumps(cancel_batch(args.batch_id, store=_store())) + "\n")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from agentflow.batch import compare_batches

    print_json(compare_batches(args.batch_a, args.batch_b, store=_store()))
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from agentflow.batch.celery_backend import run_worker

    _quiet_runs()
    return run_worker(concurrency=args.concurrency, pool=args.pool, queue=args.queue, loglevel=args.loglevel,
                      hostname=args.hostname)


__all__ = ["ProgressBar", "add_commands"]
