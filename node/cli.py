"""The ``carnet`` command: set up, run and administer a school node.

    carnet init  --data DIR --school NAME --url URL --admin-email E   create the data folder
    carnet serve --data DIR [--no-workers]                            run the node (hypercorn)
    carnet worker --data DIR                                          background work only (PG)
    carnet demo  --data DIR                                           seed a demo school
    carnet admin --data DIR create-admin|setup-link|list-staff|disable|migrate
    carnet keys  --data DIR status|next|rotate|revoke                 change the node's key
    carnet backup  --data DIR --out FILE                              one archive, node running
    carnet restore --data NEWDIR --from FILE [--database-url URL]     into a new data folder
    carnet migrate-to-postgres --data DIR --database-url URL          move SQLite to PostgreSQL
    carnet doctor  --data DIR                                         check the deployment

Every sub-command reads the same layered configuration as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from federation.runtime.keyrotation import KeyChangeError
from node.config import ConfigError, dump_toml, load_config
from node.datafolder import DataFolderError, create_keys, load_keys
from node.errors import CarnetError
from node.ops.common import OpsError
from node.services import accounts
from node.services.context import ServiceContext
from node.storage.db import Storage, open_database
from node.storage.migrations import migrate


def _context(data_dir: Path) -> tuple[ServiceContext, Storage]:
    config = load_config({"data_dir": str(data_dir)})
    keys = load_keys(config.data_dir)
    db = open_database(config.resolved_database_url)
    with db.connection_context():
        migrate(db)
    from federation.runtime import events as federation_events

    ctx = ServiceContext(
        config=config,
        node_secret=keys.node_secret,
        signing_key=keys.signing_key,
        publisher=federation_events.publish,
    )
    return ctx, Storage(db, 1)


def cmd_init(args: argparse.Namespace) -> int:
    data_dir: Path = args.data
    config_file = data_dir / "carnet.toml"
    # Only the node's user may enter a new data folder: it holds the database and keys.
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not config_file.exists():
        values: dict[str, Any] = {
            "school_name": args.school,
            "public_url": args.url,
            "bind": args.bind,
        }
        if args.database_url:
            values["database_url"] = args.database_url
        load_config({"data_dir": str(data_dir), **values})  # validate before writing anything
        config_file.write_text(dump_toml(values), encoding="utf-8")
        print(f"Wrote {config_file}")
    else:
        print(f"Kept the existing {config_file}")
    for name in create_keys(data_dir):
        print(f"Created {data_dir / name}")
    ctx, storage = _context(data_dir)
    print(f"Database ready: {ctx.config.resolved_database_url.split('@')[-1]}")
    has_admin = any(a.role == "admin" for a in storage.call(accounts.list_staff, ctx, None))
    email = args.admin_email
    if not has_admin and not email and sys.stdin.isatty():
        email = input("E-mail address of the school admin (their login): ").strip()
    if has_admin:
        print("An admin already exists; `carnet admin setup-link EMAIL` issues a new link.")
    elif email:
        _, token = storage.call(accounts.create_staff, ctx, None, "admin", args.admin_name, email)
        print("\nOne-time admin setup link (valid 72 hours, shown only now):")
        print(f"  {accounts.setup_url(ctx, token)}\n")
    else:
        print(
            "No admin yet. Create one with:\n"
            f"  carnet admin --data {data_dir} create-admin --name NAME --email EMAIL"
        )
    storage.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from node import http11
    from node.app import create_app

    overrides: dict[str, Any] = {"data_dir": str(args.data)}
    if args.bind:
        overrides["bind"] = args.bind
    if args.no_workers:
        overrides["run_workers"] = False
    app = create_app(overrides)
    config = app.config["CARNET"]
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    hyper = Config()
    hyper.bind = [config.bind]
    hyper.accesslog = None
    hyper.graceful_timeout = 5
    hyper.include_server_header = False
    # Runs from connect (or the previous answer) until a request's headers are in:
    # a client trickling headers is closed after it, however many bytes it sends.
    hyper.keep_alive_timeout = config.request_header_timeout
    # read_timeout stays None: a live-updates stream (GET /api/v1/events) sends
    # nothing for minutes; bodies are bounded by BODY_TIMEOUT (request_body_timeout).
    hyper.read_timeout = None
    # h11_max_incomplete_size stays 16 KiB: an unfinished request line or header
    # block past it is answered 431 at once.
    http11.install()  # no cleartext HTTP/2 (node/http11.py says why)
    print(
        f"Carnet ({config.school_name}) serving on http://{config.bind} — public URL {config.public_url}"
    )
    asyncio.run(serve(app, hyper))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from node.app import create_app
    from node.worker_process import WorkerProcessError, check_can_split, run_until_stopped

    app = create_app({"data_dir": str(args.data), "run_workers": True})
    config = app.config["CARNET"]
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        check_can_split(app)
    except WorkerProcessError as error:
        print(f"carnet worker: {error}", file=sys.stderr)
        return 2
    print(f"Carnet ({config.school_name}) workers running; stop with SIGTERM or Ctrl-C")
    asyncio.run(run_until_stopped(app))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from node.demo import seed_demo

    ctx, storage = _context(args.data)
    print(storage.call(seed_demo, ctx))
    storage.close()
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    ctx, storage = _context(args.data)
    try:
        if args.action == "create-admin" or args.action == "create-teacher":
            role = "admin" if args.action == "create-admin" else "teacher"
            _, token = storage.call(accounts.create_staff, ctx, None, role, args.name, args.email)
            print(f"Setup link (valid 72 hours): {accounts.setup_url(ctx, token)}")
        elif args.action == "setup-link":
            account_id = storage.call(accounts.find_account_id, ctx, args.email)
            token = storage.call(accounts.reissue_setup_link, ctx, None, account_id)
            print(f"Setup link (valid 72 hours): {accounts.setup_url(ctx, token)}")
        elif args.action == "list-staff":
            for person in storage.call(accounts.list_staff, ctx, None):
                print(
                    f"{person.id:>5}  {person.role:<8} {person.status:<9} {person.display_name}  {person.contact_masked}"
                )
        elif args.action == "disable":
            account_id = storage.call(accounts.find_account_id, ctx, args.email)
            view = storage.call(accounts.disable_account, ctx, None, account_id)
            print(f"Disabled {view.display_name}; their sessions are ended.")
        elif args.action == "migrate":
            print("The database schema is current.")
    finally:
        storage.close()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from node import cli_keys

    if args.action == "revoke":
        cli_keys.confirm_revocation(args.yes)
    from federation.runtime import identity

    ctx, storage = _context(args.data)
    try:
        storage.call(identity.register_key, ctx)  # a node that never served yet
        if args.action == "next":
            return cli_keys.keys_next(ctx, storage)
        if args.action == "rotate":
            return cli_keys.keys_rotate(ctx, storage, skip_notice=args.skip_notice)
        if args.action == "revoke":
            return cli_keys.keys_revoke(ctx, storage)
        return cli_keys.keys_status(ctx, storage)
    finally:
        storage.close()


def cmd_backup(args: argparse.Namespace) -> int:
    from node.ops.backup import create_backup

    result = create_backup(args.data, args.out)
    manifest = result.manifest
    print(
        f"Wrote {result.path} ({result.size / 1e6:.1f} MB, {result.files} files, "
        f"{manifest.database} database at schema version {manifest.schema_version})."
    )
    print(
        "It holds the node's private keys and personal data (mode 0600): keep it as private "
        "as the server, and copy it off the machine."
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from node.ops.restore import restore_backup

    result = restore_backup(args.source, args.data, args.database_url)
    manifest = result.manifest
    where = result.database_url.split("@")[-1] if result.database_url else "SQLite"
    print(f"Restored {manifest.school_name} ({manifest.public_url}) as of {manifest.created_at}")
    print(f"into {args.data}; database: {where}. Every checksum matched.")
    print(
        f"Start it with `carnet serve --data {args.data}` (it migrates if this release is newer)."
    )
    return 0


def cmd_migrate_to_postgres(args: argparse.Namespace) -> int:
    from node.ops.pgmove import move_to_postgres

    result = move_to_postgres(args.data, args.database_url, replace=args.replace)
    total = sum(result.counts.values())
    verb = "Replaced the previous copy with" if result.replaced else "Copied"
    print(f"{verb} {total} rows in {len(result.counts)} tables; every table's count matches.")
    print(f"carnet.toml now uses PostgreSQL; the previous file is {result.toml_backup}.")
    print("The SQLite database was left as it was. Start the node: `carnet serve`.")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from node.ops.doctor import exit_code, run_doctor

    checks = run_doctor(args.data)
    for check in checks:
        print(check.line())
    return exit_code(checks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carnet", description="Run a Carnet school node.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_data(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--data", type=Path, default=Path("carnet-data"), help="the node's data folder"
        )
        return p

    init = with_data(sub.add_parser("init", help="create the data folder, keys and database"))
    init.add_argument("--school", default="École Carnet", help="the school's name")
    init.add_argument("--url", default="http://127.0.0.1:8000", help="the public URL families use")
    init.add_argument("--bind", default="127.0.0.1:8000", help="address:port to listen on")
    init.add_argument(
        "--database-url", default="", help="postgresql://… (default: SQLite in the data folder)"
    )
    init.add_argument("--admin-email", default="", help="create the first admin with this login")
    init.add_argument("--admin-name", default="School admin", help="the first admin's name")
    init.set_defaults(func=cmd_init)

    serve = with_data(sub.add_parser("serve", help="serve the node"))
    serve.add_argument("--bind", default="", help="override the configured address:port")
    serve.add_argument(
        "--no-workers", action="store_true",
        help="HTTP only: background work runs in `carnet worker` processes (PostgreSQL)",
    )  # fmt: skip
    serve.set_defaults(func=cmd_serve)
    worker = with_data(sub.add_parser("worker", help="run the background workers, no HTTP"))
    worker.set_defaults(func=cmd_worker)

    demo = with_data(sub.add_parser("demo", help="seed a demo school and print how to log in"))
    demo.set_defaults(func=cmd_demo)

    admin = with_data(sub.add_parser("admin", help="operator tasks without the web UI"))
    actions = admin.add_subparsers(dest="action", required=True)
    for name in ("create-admin", "create-teacher"):
        p = actions.add_parser(name)
        p.add_argument("--name", required=True)
        p.add_argument("--email", required=True)
    actions.add_parser("setup-link").add_argument("email")
    actions.add_parser("list-staff")
    actions.add_parser("disable").add_argument("email")
    actions.add_parser("migrate")
    admin.set_defaults(func=cmd_admin)

    keys = with_data(sub.add_parser("keys", help="change this node's signing key (federation)"))
    key_actions = keys.add_subparsers(dest="action", required=True)
    key_actions.add_parser("status", help="this node's keys and what the peers were told")
    key_actions.add_parser("next", help="create and announce the next key")
    rotate = key_actions.add_parser("rotate", help="switch to the next key, tell the peers")
    rotate.add_argument(
        "--skip-notice", action="store_true", help="rotate less than 24 h after `keys next`"
    )
    revoke = key_actions.add_parser("revoke", help="the key leaked: switch to a new key now")
    revoke.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    keys.set_defaults(func=cmd_keys)

    backup = with_data(sub.add_parser("backup", help="write one archive of the node (online)"))
    backup.add_argument("--out", type=Path, required=True, help="the archive to write (.tar.gz)")
    backup.set_defaults(func=cmd_backup, files_command=True)

    restore = with_data(sub.add_parser("restore", help="restore a backup into a new data folder"))
    restore.add_argument(
        "--from", dest="source", type=Path, required=True, help="the archive `carnet backup` wrote"
    )
    restore.add_argument(
        "--database-url", default="", help="postgresql://… of a new, empty database"
    )
    restore.set_defaults(func=cmd_restore, files_command=True)

    move = with_data(
        sub.add_parser("migrate-to-postgres", help="copy a stopped SQLite node to PostgreSQL")
    )
    move.add_argument("--database-url", required=True, help="postgresql://user:pass@host/db")
    move.add_argument(
        "--replace", action="store_true", help="erase data a node already wrote there"
    )
    move.set_defaults(func=cmd_migrate_to_postgres, files_command=True)

    doctor = with_data(sub.add_parser("doctor", help="check this deployment"))
    doctor.set_defaults(func=cmd_doctor, files_command=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, DataFolderError, CarnetError, KeyChangeError, OpsError) as error:
        message = error.message if isinstance(error, CarnetError) else str(error)
        print(f"carnet: {message}", file=sys.stderr)
        return 2
    except OSError as error:
        if not getattr(args, "files_command", False):
            raise
        # backup, restore…: a folder or file the user may not read or write
        where = f"{error.filename}: " if error.filename else ""
        hint = ""
        if isinstance(error, PermissionError):
            hint = ". Run it as the node's user (for example `sudo -u carnet carnet …`)"
        print(f"carnet: {where}{error.strerror or error}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
