"""``validate``, ``run``, ``schema`` and ``plugins``: the runtime's commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agentflow.cli.output import EXIT_FAILED, EXIT_INVALID, EXIT_OK, print_error, print_json
from agentflow.errors import AgentFlowError, NotFoundError, ValidationError


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a workflow file; print its problems")
    p.add_argument("file", help="workflow JSON file")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("run", help="run a workflow file or a saved workflow; print the final state")
    p.add_argument("workflow", help="a workflow JSON file, or the id of a saved workflow")
    p.add_argument("--input", dest="input", help="the user_input text")
    p.add_argument("--state", help="extra initial state as a JSON object")
    p.add_argument("--subqueue", help='queue subqueue for every call of this run (e.g. "batch")')
    p.add_argument("--version", type=int, help="version of a saved workflow (default: latest)")
    p.add_argument("--save", action="store_true", help="record the run in the run history")
    p.add_argument("--events", action="store_true", help="print live events as JSON lines instead")
    p.add_argument("--break", dest="breakpoints", action="append", metavar="NODE", help="pause before NODE")
    p.add_argument("--break-after", dest="break_after", action="append", metavar="NODE", help="pause after NODE")
    p.add_argument("--step", action="store_true", help="pause before every node")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("resume", help="go on with a paused run, optionally editing its state first")
    p.add_argument("run_id")
    p.add_argument("--state", help="state changes as a JSON object, applied before resuming")
    p.add_argument("--events", action="store_true", help="print live events as JSON lines instead")
    p.set_defaults(handler=cmd_resume)

    p = sub.add_parser("checkpoints", help="list a debugged run's checkpoints, oldest first")
    p.add_argument("run_id")
    p.set_defaults(handler=cmd_checkpoints)

    p = sub.add_parser("fork", help="run again from a checkpoint of a run, as a new run")
    p.add_argument("run_id")
    p.add_argument("checkpoint_id")
    p.add_argument("--state", help="state changes as a JSON object, applied at the checkpoint")
    p.set_defaults(handler=cmd_fork)

    p = sub.add_parser("schema", help="print the JSON Schema of the workflow format")
    p.set_defaults(handler=cmd_schema)

    p = sub.add_parser("plugins", help="list node types and providers (and any that failed to load)")
    p.set_defaults(handler=cmd_plugins)


def cmd_validate(args: argparse.Namespace) -> int:
    from agentflow.spec.validate import validate_workflow

    spec = validate_workflow(Path(args.file))
    print_json({"valid": True, "id": spec.id, "warnings": spec.warnings})
    return EXIT_OK


def _state(args: argparse.Namespace) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if args.state:
        try:
            state = json.loads(args.state)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"--state is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                errors=[{"path": "--state", "message": exc.msg}],
            ) from None
        if not isinstance(state, dict):
            raise ValidationError(
                "--state must be a JSON object", errors=[{"path": "--state", "message": "not an object"}]
            )
    if args.input is not None:
        state["user_input"] = args.input
    return state


def _document(ref: str, version: int | None) -> tuple[Any, int | None]:
    """A file's path, or a saved workflow's document and version."""
    path = Path(ref)
    if path.exists() or ref.endswith(".json"):
        return path, None
    from agentflow import store

    opener = getattr(store, "default_store", None)
    if opener is None:
        raise NotFoundError(f'no file "{ref}" (and no workflow store is configured)')
    saved = opener().get_workflow(ref, version=version)
    return saved["document"], saved["version"]


def cmd_run(args: argparse.Namespace) -> int:
    from agentflow.runtime.executor import run_workflow, stream_workflow
    from agentflow.spec.validate import validate_workflow

    state = _state(args)
    document, version = _document(args.workflow, args.version)
    spec = validate_workflow(document)
    kw: dict[str, Any] = {
        "subqueue": args.subqueue,
        "user": _user(),
        "workflow_version": version,
        "breakpoints": args.breakpoints,
        "break_after": args.break_after,
        "step": args.step,
    }
    if args.events:
        final = _print_events(stream_workflow(spec, state, **kw))
        _save(args, final, state, version)
        return _code(final)
    try:
        final = run_workflow(spec, state, **kw)
    except AgentFlowError as exc:
        _save(args, getattr(exc, "state", None), state, version)
        return print_error(exc, code=EXIT_FAILED)
    _save(args, final, state, version)
    print_json(final)
    return EXIT_OK


def _print_events(events: Any) -> dict[str, Any]:
    """Write each event as one JSON line; return the final state."""
    final: dict[str, Any] = {}
    for event in events:
        sys.stdout.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()
        if event["type"] == "run_end":
            final = event["data"]
    return final


def _code(final: dict[str, Any]) -> int:
    return EXIT_FAILED if final.get("metadata", {}).get("status") == "failed" else EXIT_OK


def _user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return None


def _patch(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.state:
        return None
    args.input = None
    return _state(args)


def cmd_resume(args: argparse.Namespace) -> int:
    from agentflow.runtime.debug import resume_run, stream_resume

    patch = _patch(args)
    if args.events:
        return _code(_print_events(stream_resume(args.run_id, patch)))
    try:
        final = resume_run(args.run_id, patch)
    except AgentFlowError as exc:
        if getattr(exc, "state", None) is None:
            raise
        return print_error(exc, code=EXIT_FAILED)
    print_json(final)
    return EXIT_OK


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from agentflow.runtime.debug import list_checkpoints

    print_json(list_checkpoints(args.run_id))
    return EXIT_OK


def cmd_fork(args: argparse.Namespace) -> int:
    from agentflow.runtime.debug import fork_run

    try:
        final = fork_run(args.run_id, args.checkpoint_id, _patch(args))
    except AgentFlowError as exc:
        if getattr(exc, "state", None) is None:
            raise
        return print_error(exc, code=EXIT_FAILED)
    print_json(final)
    return EXIT_OK


def _save(args: argparse.Namespace, final: dict[str, Any] | None, state: dict[str, Any], version: int | None) -> None:
    if not args.save or not final:
        return
    from agentflow.store import default_store

    if final.get("metadata", {}).get("breakpoints") is not None:
        return  # debugged runs record themselves
    default_store().record_run(final, user=_user(), input=state, workflow_version=version)


def cmd_schema(args: argparse.Namespace) -> int:
    from agentflow.spec.schema import workflow_json_schema

    print_json(workflow_json_schema())
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    from agentflow.nodes.registry import node_types
    from agentflow.sources.registry import providers

    print_json(
        {
            "node_types": {c.type_name: c.summary for c in node_types},
            "providers": sorted(f"{c.kind}/{c.name}" for c in providers),
            "failed": {**node_types.failures, **providers.failures},
        }
    )
    return EXIT_OK


__all__ = ["EXIT_INVALID", "add_commands", "print_error"]
