"""The `video-assets` command: demo, process, sql, dev, worker, cameras, model, retention."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from video_assets.cli import models as model_cli
from video_assets.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="video-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="write sample videos into an empty inbox, then process them")
    process = commands.add_parser(
        "process", help="pick up every file in the drop folders, run it, build the SQL models, print a summary"
    )
    process.add_argument(
        "--settle-timeout", type=float, default=3600.0, help="seconds to wait for files still being written"
    )
    worker = commands.add_parser(
        "worker", help="run workers on this machine until Ctrl-C: long-lived processes that execute runs"
    )
    worker.add_argument("--queue", action="append", dest="queues", metavar="Q",
                        help="take runs from this queue (repeatable; default: dagster, where runs go unless a "
                        "run's dagster-celery/queue tag says otherwise)")  # fmt: skip
    worker.add_argument("--concurrency", type=int, metavar="N", help="worker processes (default: VIDEO_ASSETS_WORKERS)")
    sql = commands.add_parser("sql", help="run a query against the published warehouse (read-only)")
    sql.add_argument("query", nargs="?", help='e.g. "select * from video_summary"')
    sql.add_argument("--full-refresh", action="store_true", help="first rebuild every SQL model from all the Parquet")
    formats = sql.add_mutually_exclusive_group()
    formats.add_argument("--csv", dest="output", action="store_const", const="csv", help="print CSV")
    formats.add_argument("--json", dest="output", action="store_const", const="json", help="print JSON")
    commands.add_parser(
        "dev",
        help="the Dagster UI, daemon and run workers on the instance under VIDEO_ASSETS_HOME; "
        "other arguments go to dagster-webserver (e.g. --port 3001)",
    )
    cameras = commands.add_parser("cameras", help="live cameras: run their ingest workers, or show their status")
    camera_commands = cameras.add_subparsers(dest="cameras_command", required=True)
    run_cameras = camera_commands.add_parser(
        "run", help="one ingest worker per camera (all, or the ones named) until Ctrl-C or SIGTERM"
    )
    run_cameras.add_argument("names", nargs="*", metavar="NAME")
    camera_commands.add_parser("status", help="each camera's worker state, last frame, fps, drops and gaps")
    model_cli.add_commands(commands)
    retention = commands.add_parser(
        "retention", help="remove what the retention settings no longer keep (what the `retention` job does)"
    )
    retention.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    args, dagster_args = parser.parse_known_args(argv)
    if dagster_args and args.command != "dev":
        parser.error(f"unrecognized arguments: {' '.join(dagster_args)}")

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"video-assets: {exc}", file=sys.stderr)
        return 2
    if args.command in ("demo", "process"):
        stop_services_on_sigterm()
        try:
            if args.command == "demo":
                return demo(settings)
            from video_assets.cli.process import process as run_process

            return run_process(settings, settle_timeout_s=args.settle_timeout)
        except KeyboardInterrupt:
            print(
                f"video-assets {args.command}: interrupted; the daemon and run workers it started are stopped",
                file=sys.stderr,
            )
            return 130
    if args.command == "sql":
        from video_assets.cli.query import run_query

        if args.full_refresh:
            from video_assets.sql.refresh import rebuild_all

            code = rebuild_all(settings)
            if code or not args.query:
                return code
        elif not args.query:
            parser.error("sql: give a query (or --full-refresh)")
        return run_query(settings, args.query, args.output or "table")
    if args.command == "worker":
        return run_worker(settings, tuple(args.queues or ()), args.concurrency)
    if args.command == "retention":
        from video_assets.cli import retention as retention_cli

        return retention_cli.run(settings, args.dry_run)
    if args.command == "cameras":
        from video_assets.cli import cameras as camera_cli

        return camera_cli.run(settings, args.names) if args.cameras_command == "run" else camera_cli.status(settings)
    if args.command == "model":
        return model_cli.run(settings, args)
    return dev_server(settings, dagster_args)


def stop_services_on_sigterm() -> None:
    """SIGTERM stops `process` and `demo` as Ctrl-C does, through the code that stops the daemon and the
    run workers they started and fails the runs in progress (Python's default ends the process at once
    and leaves them running)."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def demo(settings: Settings) -> int:
    from video_assets.cli.demo import demo as run_demo

    return run_demo(settings)


def run_worker(settings: Settings, queues: tuple[str, ...], concurrency: int | None) -> int:
    """Celery in the foreground (Ctrl-C: finish the runs in progress, then stop; twice: stop now)."""
    from video_assets.runtime.celery import QUEUE
    from video_assets.runtime.instance import prepare_environment
    from video_assets.runtime.services import worker_command

    prepare_environment(settings)
    command = worker_command(settings, queues or (QUEUE,), concurrency)
    print(f"Run workers on queue(s) {', '.join(queues or (QUEUE,))}; logs on this terminal", flush=True)
    os.execv(command[0], command)
    return 0  # not reached


def dev_server(settings: Settings, webserver_args: list[str]) -> int:
    """The webserver, the daemon and the run workers until Ctrl-C or SIGTERM; nothing is left running."""
    from video_assets.runtime.instance import prepare_environment
    from video_assets.runtime.services import ServiceError, local_services

    prepare_environment(settings, create_storage=False)  # local_services creates it, the run workers started
    if not {"-p", "--port"} & set(webserver_args):
        webserver_args = [*webserver_args, "--port", "3000"]
    if not {"-h", "--host"} & set(webserver_args):
        webserver_args = [*webserver_args, "--host", "127.0.0.1"]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with local_services(settings, webserver_args=webserver_args) as services:
        if not services.services:
            print(
                "video-assets: this instance's services are already running (another `dev` or `process`)",
                file=sys.stderr,
            )
            return 2
        host = webserver_args[webserver_args.index("--host") + 1] if "--host" in webserver_args else "127.0.0.1"
        port = webserver_args[webserver_args.index("--port") + 1] if "--port" in webserver_args else "3000"
        print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={settings.dagster_home}); logs in {settings.logs_dir}")
        print(f"Preview pictures served at {settings.media_base_url} (VIDEO_ASSETS_MEDIA_URL / _PORT)")
        print(f"{settings.workers} run worker process(es); Ctrl-C stops everything.", flush=True)
        try:
            while not stop.wait(1.0):
                services.check()
        except ServiceError as exc:
            print(f"video-assets: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
