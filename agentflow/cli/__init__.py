"""``python -m agentflow``: the command line (spec section 10).

Each command group lives in its own module with an ``add_commands(subparsers)`` function;
handlers return an exit code: 0 ok (a run paused at a breakpoint included), 1 the run failed
or was refused while running, 2 the input or document is invalid before any node runs.
Results and errors go to stdout as JSON; logs go to stderr and the log file, never stdout.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from agentflow.cli.output import EXIT_INVALID, print_error

#: Modules contributing commands, in help order.
COMMAND_MODULES = (
    "agentflow.cli.run_cmds",
    "agentflow.cli.store_cmds",
    "agentflow.cli.serve_cmds",
    "agentflow.cli.batch_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agentflow",
        description="Validate, run and manage AgentFlow workflows.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from agentflow.errors import AgentFlowError, InternalServerError
    from agentflow.logs import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging()
    try:
        return int(args.handler(args) or 0)
    except AgentFlowError as exc:
        return print_error(exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: traceback to the log, the error shape to stdout
        import logging

        logging.getLogger("agentflow.cli").exception("unexpected error")
        return print_error(InternalServerError(f"internal error: {type(exc).__name__}: {exc}"), code=1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["EXIT_INVALID", "build_parser", "main"]
