"""Store commands: ``workflows``, ``secrets``, ``users``, ``tokens``, ``runs`` (spec §10, §12).

Each handler is a thin adapter over :mod:`agentflow.store` (the store ``AGENTFLOW_DB_URL``
names, shared with the workbench): it reads arguments, calls the store, prints JSON.
Secret values and passwords are read from stdin, never from arguments (which other users
of the machine can see in the process list), and are never printed; an API key is printed
once, alone on its line, so scripts can capture it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from agentflow.cli.output import EXIT_OK, print_json, read_stdin_secret
from agentflow.errors import ValidationError
from agentflow.store import Store, default_store

_ROLES = "admin|editor|viewer"


def _store() -> Store:
    return default_store()


def _whoami() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


# -- workflows ---------------------------------------------------------------------------
def _workflows_save(args: argparse.Namespace) -> int:
    from agentflow.spec import validate_workflow

    path = Path(args.file)
    if not path.is_file():
        raise ValidationError(
            f"{path}: no such file", errors=[{"path": str(path), "message": "no such file"}]
        )
    validate_workflow(str(path))
    text = path.read_text(encoding="utf-8")
    workflow_id = json.loads(text)["id"]
    version = _store().save_workflow(
        text, author=args.author or _whoami(), message=args.message, base_version=args.base_version
    )
    print_json({"id": workflow_id, "version": version})
    return EXIT_OK


def _workflows_list(args: argparse.Namespace) -> int:
    print_json(_store().list_workflows(limit=args.limit, offset=args.offset))
    return EXIT_OK


def _workflows_show(args: argparse.Namespace) -> int:
    print_json(_store().get_workflow(args.id, args.version))
    return EXIT_OK


def _workflows_export(args: argparse.Namespace) -> int:
    print_json(_store().get_workflow(args.id, args.version)["document"])
    return EXIT_OK


def _workflows_versions(args: argparse.Namespace) -> int:
    print_json(_store().list_versions(args.id))
    return EXIT_OK


# -- secrets -----------------------------------------------------------------------------
def _secrets_set(args: argparse.Namespace) -> int:
    value = read_stdin_secret(f"value of secret {args.name}: ")
    _store().set_secret(args.name, value)
    print_json({"name": args.name, "stored": True})
    return EXIT_OK


def _secrets_list(args: argparse.Namespace) -> int:
    print_json(_store().list_secrets())
    return EXIT_OK


def _secrets_delete(args: argparse.Namespace) -> int:
    _store().delete_secret(args.name)
    print_json({"name": args.name, "deleted": True})
    return EXIT_OK


def _secrets_rotate(args: argparse.Namespace) -> int:
    if args.new_key:
        from agentflow.security import crypto
        from agentflow.settings import get_settings

        if get_settings().secret_key:
            raise ValidationError(
                "--new-key rotates the generated key file; with AGENTFLOW_SECRET_KEY set, put the "
                "new passphrase there and the old one in AGENTFLOW_PREVIOUS_SECRET_KEY instead",
                errors=[{"path": "--new-key", "message": "only for the key file"}],
            )
        crypto.rotate_key_file()
    print_json({"rotated": _store().rotate_secrets()})
    return EXIT_OK


# -- users -------------------------------------------------------------------------------
def _users_add(args: argparse.Namespace) -> int:
    password = read_stdin_secret(f"password for {args.name}: ")
    print_json(_store().add_user(args.name, password, args.role))
    return EXIT_OK


def _users_list(args: argparse.Namespace) -> int:
    print_json(_store().list_users())
    return EXIT_OK


def _users_set_role(args: argparse.Namespace) -> int:
    print_json(_store().set_role(args.name, args.role))
    return EXIT_OK


def _users_delete(args: argparse.Namespace) -> int:
    _store().delete_user(args.name)
    print_json({"name": args.name, "deleted": True})
    return EXIT_OK


# -- API tokens --------------------------------------------------------------------------
def _tokens_create(args: argparse.Namespace) -> int:
    key = _store().create_token(args.name, args.role, expires_days=args.expires_days)
    sys.stdout.write(key + "\n")
    sys.stdout.flush()
    return EXIT_OK


def _tokens_list(args: argparse.Namespace) -> int:
    print_json(_store().list_tokens())
    return EXIT_OK


def _tokens_revoke(args: argparse.Namespace) -> int:
    _store().revoke_token(args.name)
    print_json({"name": args.name, "revoked": True})
    return EXIT_OK


# -- runs --------------------------------------------------------------------------------
def _runs_list(args: argparse.Namespace) -> int:
    rows, cursor = _store().list_runs(
        workflow=args.workflow,
        status=args.status,
        user=args.user,
        limit=args.limit,
        cursor=args.cursor,
    )
    print_json({"runs": rows, "next_cursor": cursor})
    return EXIT_OK


def _runs_show(args: argparse.Namespace) -> int:
    print_json(_store().get_run(args.run_id))
    return EXIT_OK


def _group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    parser = sub.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def add_commands(sub: argparse._SubParsersAction) -> None:
    wf = _group(sub, "workflows", "saved workflows and their versions")
    p = wf.add_parser("save", help="validate FILE.json and save it as a new version")
    p.add_argument("file", metavar="FILE.json")
    p.add_argument("--message", "-m", help="why this version")
    p.add_argument("--base-version", type=int, help="refuse unless N is the latest version")
    p.add_argument("--author", help="recorded author (default: your login name)")
    p.set_defaults(handler=_workflows_save)
    p = wf.add_parser("list", help="saved workflows, recently changed first")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p.set_defaults(handler=_workflows_list)
    for name, handler, what in (
        ("show", _workflows_show, "a version with its metadata (latest by default)"),
        ("export", _workflows_export, "the document JSON only (latest by default)"),
    ):
        p = wf.add_parser(name, help=what)
        p.add_argument("id", metavar="ID")
        p.add_argument("--version", type=int)
        p.set_defaults(handler=handler)
    p = wf.add_parser("versions", help="a workflow's versions, newest first")
    p.add_argument("id", metavar="ID")
    p.set_defaults(handler=_workflows_versions)

    sec = _group(sub, "secrets", "encrypted secrets (values are never shown)")
    p = sec.add_parser("set", help="store NAME's value, read from stdin")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_secrets_set)
    sec.add_parser("list", help="names only").set_defaults(handler=_secrets_list)
    p = sec.add_parser("delete", help="remove a secret")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_secrets_delete)
    p = sec.add_parser("rotate", help="re-encrypt every secret with the newest key")
    p.add_argument(
        "--new-key", action="store_true", help="first add a new key to the generated key file"
    )
    p.set_defaults(handler=_secrets_rotate)

    users = _group(sub, "users", "workbench and API users")
    p = users.add_parser("add", help="add a user; the password is read from stdin")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, metavar=_ROLES)
    p.set_defaults(handler=_users_add)
    users.add_parser("list", help="users and their roles").set_defaults(handler=_users_list)
    p = users.add_parser("set-role", help="change a user's role")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, metavar=_ROLES)
    p.set_defaults(handler=_users_set_role)
    p = users.add_parser("delete", help="remove a user")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_users_delete)

    tok = _group(sub, "tokens", "API keys for the HTTP API")
    p = tok.add_parser("create", help="create a key and print it (shown only this once)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, metavar=_ROLES)
    p.add_argument("--expires-days", type=float, metavar="N")
    p.set_defaults(handler=_tokens_create)
    tok.add_parser("list", help="keys with their last use").set_defaults(handler=_tokens_list)
    p = tok.add_parser("revoke", help="refuse a key from the next request on")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_tokens_revoke)

    runs = _group(sub, "runs", "run history")
    p = runs.add_parser("list", help="runs, newest first")
    p.add_argument("--workflow", metavar="ID")
    p.add_argument("--status", metavar="S")
    p.add_argument("--user", metavar="NAME")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--cursor", help="next_cursor of the previous page")
    p.set_defaults(handler=_runs_list)
    p = runs.add_parser("show", help="a stored run: input, final state, trace, totals")
    p.add_argument("run_id", metavar="RUN_ID")
    p.set_defaults(handler=_runs_show)
