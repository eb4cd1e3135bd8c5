"""The local services runs need, started as child processes and stopped without leaving any behind.

- a code server that the daemon and the webserver share, as `dagster dev` does: with the UI, `dagster
  code-server start`, so that "Reload" reloads the definitions the sensors and schedules run with too;
  without (`process`), the one `dagster api grpc` process it would restart;
- the Dagster daemon (`dagster-daemon run`): sensor and schedule ticks, the run queue, backfills,
  run monitoring; `video-assets process` follows its progress through the instance;
- the run workers (`celery ... worker`): long-lived processes that execute runs;
- for `video-assets dev`, the webserver (`dagster-webserver`) and the media server that serves the
  preview pictures the UI shows (previews/server.py, on VIDEO_ASSETS_MEDIA_PORT).

Each service runs in its own process group with its output in VIDEO_ASSETS_HOME/logs/<name>.log; on
exit every group gets SIGTERM, and SIGKILL whatever is still alive a few seconds later. One set of
services per instance: whoever starts them holds `state/services.lock`, and a second `process` (or a
`process` next to a running `dev`) uses the running ones instead of starting its own.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import dagster as dg
import yaml

from video_assets.runtime.celery import QUEUE, celery_folder
from video_assets.runtime.instance import create_instance_storage
from video_assets.settings import REPO_DIR, Settings

CODE_LOCATION_MODULE = "video_assets.definitions"
LOCATION_NAME = "video_assets"  # as in the checkout's workspace.yaml
STOP_GRACE_S = 6.0  # after SIGTERM, then SIGKILL: `dev` must be gone within 10 s of Ctrl-C
WORKER_ERROR_FILE = "worker-error.txt"  # a worker process that cannot start writes why here


class ServiceError(RuntimeError):
    """A service could not start or died; the message says which, why, and where its log is."""


@dataclass
class Service:
    name: str
    command: list[str]
    log_path: Path
    graceful: bool = True  # False: killed at once (run workers: their runs are failed explicitly instead)
    process: subprocess.Popen | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (open while the service runs; closed by close())
        # A process group of its own: a terminal's Ctrl-C reaches us only, and we stop the group whole.
        self.process = subprocess.Popen(
            self.command, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process else None

    def terminate(self) -> None:
        """Ask the service to stop: its own children (code servers, worker processes) are its to stop."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def kill_group(self) -> None:
        """Whatever of the service's process group is still alive."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        if self._log:
            self._log.close()


class Services:
    """Services this process started (or none, when another process already runs them)."""

    def __init__(self, settings: Settings, services: list[Service]):
        self.settings = settings
        self.services = services

    def start(self, service: Service, env: dict[str, str]) -> None:
        service.start(env)
        self.services.append(service)

    def check(self) -> None:
        """Raise ServiceError if a service died or the run workers cannot start."""
        error_file = celery_folder(self.settings) / WORKER_ERROR_FILE
        if error_file.exists():
            raise ServiceError(f"The run workers cannot start: {error_file.read_text().strip()}")
        for service in self.services:
            code = service.exit_code()
            if code is not None:
                raise ServiceError(
                    f"The {service.name} stopped (exit code {code}); see {service.log_path}:\n{_tail(service.log_path)}"
                )

    def stop(self) -> None:
        """Stop every service within STOP_GRACE_S; fail the runs the run workers had in progress."""
        for service in self.services:
            service.terminate() if service.graceful else service.kill_group()
        deadline = time.monotonic() + STOP_GRACE_S
        for service in self.services:
            assert service.process is not None
            try:
                service.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            service.kill_group()
            service.process.wait()
            service.close()
        if any(not service.graceful for service in self.services):
            fail_interrupted_runs()


def fail_interrupted_runs() -> None:
    """Runs the stopped workers had in progress can never finish: record them as failed (the nightly
    backfill retries them) instead of leaving them STARTED until their max runtime."""
    with dg.DagsterInstance.get() as instance:
        in_progress = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=in_progress)):
            if run.status == dg.DagsterRunStatus.CANCELING:
                instance.report_run_canceled(run, "Its run worker was stopped while the run was being canceled.")
            else:
                instance.report_run_failed(run, "Its run worker was stopped (video-assets exited) during the run.")


@contextmanager
def local_services(settings: Settings, webserver_args: list[str] | None = None) -> Iterator[Services]:
    """The daemon and the run workers (and the webserver when `webserver_args` is given), for this block.

    If another process already runs this instance's services, they are used as they are.
    """
    lock_path = settings.state_dir / "services.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield Services(settings, [])  # e.g. `video-assets dev` is running: its daemon and workers serve us
            return
        (celery_folder(settings) / WORKER_ERROR_FILE).unlink(missing_ok=True)
        env = dict(os.environ)  # prepare_environment() has set VIDEO_ASSETS_HOME and DAGSTER_HOME
        running = Services(settings, [])
        try:
            # The run workers first: their import of `inference` (about 12 s) is the longest wait of all,
            # and they touch the instance only when a run arrives. On many machines they are started on
            # each machine with `video-assets worker`.
            if settings.cluster is None:
                running.start(run_workers(settings), env)
            create_instance_storage()  # meanwhile, and before the processes that share it start
            # Reloading the definitions (the UI's Reload) needs `dagster code-server`, a process that
            # restarts the one serving them; without a UI, one process serves them.
            running.start(code_server(settings, port := _free_port(), reloadable=webserver_args is not None), env)
            workspace = shared_workspace(settings, port)
            _wait_for_port(port, running)
            running.start(daemon(workspace, settings), env)
            if webserver_args is not None:
                running.start(webserver(workspace, settings, webserver_args), env)
                running.start(media_server(settings, webserver_args), env)
            yield running
        finally:
            running.stop()


def code_server(settings: Settings, port: int, reloadable: bool) -> Service:
    """The gRPC server of the code location; `reloadable`: behind `dagster code-server`, which restarts it
    on Reload (one process more, about 1.5 s of CPU more at start)."""
    command = [_bin("dagster"), "code-server", "start"] if reloadable else [_bin("dagster"), "api", "grpc"]
    command += ["-m", CODE_LOCATION_MODULE, "--location-name", LOCATION_NAME, "-d", str(REPO_DIR), "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    return Service("code server", command, settings.logs_dir / "code-server.log")


def shared_workspace(settings: Settings, port: int) -> Path:
    """A workspace file pointing at the shared code server (the checkout's workspace.yaml loads the module
    directly, for a plain `dagster dev -w workspace.yaml`)."""
    path = settings.state_dir / "workspace.yaml"
    server = {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": LOCATION_NAME}}
    path.write_text(yaml.safe_dump({"load_from": [server]}))
    return path


def daemon(workspace: Path, settings: Settings) -> Service:
    return Service(
        "Dagster daemon", [_bin("dagster-daemon"), "run", "-w", str(workspace)], settings.logs_dir / "daemon.log"
    )


def run_workers(settings: Settings, queues: tuple[str, ...] = (QUEUE,), concurrency: int | None = None) -> Service:
    """One Celery worker with `concurrency` processes (one per core by default), each taking one run at a time."""
    return Service(
        "run workers", worker_command(settings, queues, concurrency), settings.logs_dir / "workers.log", graceful=False
    )


def worker_command(settings: Settings, queues: tuple[str, ...], concurrency: int | None) -> list[str]:
    return [
        _bin("celery"), "--app", "video_assets.runtime.worker", "worker",
        f"--concurrency={concurrency or settings.workers}",
        f"--queues={','.join(queues)}",
        f"--hostname=video-assets-{os.getpid()}@{socket.gethostname()}",
        "--loglevel=INFO",
        "--optimization=fair",  # a reserved run goes to a process that is free
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


def webserver(workspace: Path, settings: Settings, args: list[str]) -> Service:
    command = [_bin("dagster-webserver"), "-w", str(workspace), *args]
    return Service("Dagster webserver", command, settings.logs_dir / "webserver.log")


def media_server(settings: Settings, webserver_args: list[str]) -> Service:
    """On the webserver's host (the browser that reaches one reaches the other), at VIDEO_ASSETS_MEDIA_PORT."""
    flag = next((f for f in ("--host", "-h") if f in webserver_args), None)
    host = webserver_args[webserver_args.index(flag) + 1] if flag else "127.0.0.1"
    command = [sys.executable, "-m", "video_assets.previews.server", "--host", host, "--port", str(settings.media_port)]
    return Service("media server", command, settings.logs_dir / "media-server.log")


def record_worker_error(settings: Settings, message: str) -> None:
    """Called by a worker process that cannot start: the CLI shows this instead of waiting forever."""
    path = celery_folder(settings) / WORKER_ERROR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, services: Services, timeout_s: float = 120.0) -> None:
    """Until the code server listens (it loads the definitions first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        services.check()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise ServiceError(
        f"The code server did not listen on port {port} within {timeout_s:.0f} s; see {services.settings.logs_dir / 'code-server.log'}"
    )


def _bin(name: str) -> str:
    """A console script of this virtualenv (beside the running interpreter)."""
    return str(Path(sys.executable).with_name(name))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
