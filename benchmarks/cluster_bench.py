"""Row n: many machines on the same 2 cores: warm throughput, the start of a run on an idle worker, memory.

The cases, each on a fresh home (and, for the cluster, a fresh Postgres database, Redis database and
object-store prefix), with the same clips and the same procedure:

- one machine: the control plane's services in local mode (daemon, code server and a run worker of 2
  processes, as `video-assets process` and `dev` start them; broker and instance on local files);
- cluster, 1 worker machine: the control plane (daemon and code server, on a cluster file: Postgres,
  Redis, SeaweedFS) and `video-assets worker --concurrency 2` on one "machine" (own mount and UTS
  namespace, the control plane's home hidden);
- cluster, 2 worker machines: the same with `video-assets worker --concurrency 1` on each of two;
- (full size only) the same 2 machines with the instance straight on Postgres, without PgBouncer.

The cluster cases reach Postgres through PgBouncer (session pooling, as docs/many-machines.md
recommends): outside the webserver dagster-postgres opens a connection per query, and a Postgres
connection is a new server process.

In each case the sensor ticks every second; once the run workers say they are ready, one warm-up clip per
worker process is run and excluded, and so is the SQL models' rebuild that it starts (the automation's
run would otherwise fall into one case's window by chance); then every clip is linked into the inbox at
once. Warm throughput is clips ÷ (the last clip run's end − the first clip run's start), from the
instance's run records. Then,
with the workers idle, single clips are dropped one at a time: the run's start − its creation (the sensor
creates the run in the tick that finds the file settled, after uploading it to the store), so the sensor
interval and the settle wait (two ticks unchanged) are excluded by definition; drop to start is reported
beside it. Memory (RSS and PSS, /proc/<pid>/smaps_rollup summed over each process tree) is taken with the
workers idle, after the warm-up and again after every run.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# The benchmark uses the same real services as the cluster tests (tests/cluster): their helpers start
# PostgreSQL, Redis and SeaweedFS on 127.0.0.1 and build the commands of worker "machines".
sys.path.insert(0, str(REPO / "tests"))

from servers.cluster_services import (  # noqa: E402
    ACCESS_KEY,
    BUCKET,
    PASSWORD_ENV,
    SECRET_KEY,
    Postgres,
    cluster_file,
    machine_command,
    object_store,
    pgbouncer,
    postgres,
    redis,
)
from workers_bench import short_clips  # noqa: E402

CLI = str(Path(sys.executable).with_name("video-assets"))
VIDEO_SENSOR = "drop_folder_sensor"
WAIT_S = 600.0  # for any one thing (workers ready, a batch of runs) before the row fails
IDLE_S = 2.0  # no run in progress this long before an idle drop
REBUILD_S = 90.0  # the SQL models' rebuild after the warm-up is waited for this long at most


@dataclass
class Shared:
    """The shared services of the cluster cases, started once for the row."""

    postgres: Postgres
    pooler_port: int  # PgBouncer in front of postgres
    redis_url: str  # without the database number
    endpoint: str
    pids: dict[str, int]  # name -> the process to measure


@dataclass
class Case:
    name: str
    folder: Path
    settings: object
    services: object
    instance: object
    machines: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)  # where the run workers say they are ready
    shared_pids: dict[str, int] = field(default_factory=dict)  # the shared services (cluster cases)
    database: tuple[Postgres, str] | None = None  # the case's Postgres database (cluster cases)

    def check(self) -> None:
        self.services.check()
        for hostname, machine in self.machines.items():
            if machine.poll() is not None:
                raise RuntimeError(f"worker machine {hostname} exited with {machine.returncode}:\n{self.tails()}")

    def tails(self) -> str:
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-2500:]}" for p in self.logs if p.exists())


def measure_n(
    work: Path, clips_count: int, idle_drops: int, machine_counts: tuple[int, ...] = (1, 2), direct: bool = True
) -> dict:
    """`machine_counts`: the cluster cases, by their number of worker machines (the 2 worker processes
    shared among them), Postgres through PgBouncer; the case of 2 machines gives the idle start and the
    memory. `direct`: also the 2 machines straight to Postgres."""
    clips = short_clips(work / "short_clips", clips_count, (3.0, 4.0))
    workers = 2  # run worker processes in every case: the machine's cores
    # Distinct content from the clips above (1-2 s long): one warm-up clip per worker process, then the idle drops.
    extra = short_clips(work / "cluster_extra_clips", workers + idle_drops, (1.0, 2.0))
    warm_up, idle = extra[:workers], extra[workers:]
    if len({hashlib.sha256(p.read_bytes()).digest() for p in [*clips, *extra]}) != len(clips) + len(extra):
        raise RuntimeError(f"two clips under {work} have the same content (the sensor would skip one): delete them")
    root = work / "cluster"
    shutil.rmtree(root, ignore_errors=True)
    cases = {}
    with _local_case(root / "one_machine", workers) as case:
        cases["one"] = _measure_case(case, warm_up, clips, idle)
    with _shared_services(root / "services") as shared:
        for count in machine_counts:
            machines = {f"worker-{chr(ord('a') + i)}": workers // count for i in range(count)}
            with _cluster_case(root / f"c{count}", shared, count, workers, machines) as case:
                cases[f"c{count}"] = _measure_case(case, warm_up, clips, idle)
        if direct:  # the same 2 machines straight to Postgres: a connection (a server process) per query
            machines = {"worker-a": workers // 2, "worker-b": workers // 2}
            with _cluster_case(root / "c2_direct", shared, 9, workers, machines, pooled=False) as case:
                cases["c2_direct"] = _measure_case(case, warm_up, clips, idle)
        services_memory = {name: _tree_memory([pid]) for name, pid in shared.pids.items()}
    one, c2 = cases["one"], cases["c2"]
    return {
        "clips": f"{len(clips)} clips of 3-4 s, 640x360 30 fps; {len(warm_up)} warm-up clips of 1-2 s; "
        f"{len(idle)} idle drop(s)",
        "n_one_clips_per_min": one["clips_per_min"],
        **{f"n_{k}_clips_per_min": c["clips_per_min"] for k, c in cases.items() if k != "one"},
        **{f"n_{k}_ratio": c["clips_per_min"] / one["clips_per_min"] for k, c in cases.items() if k != "one"},
        "n_idle_start_median_s": c2["idle_create_to_start_median_s"],
        "n_idle_start_max_s": c2["idle_create_to_start_max_s"],
        "n_control_plane_mb": c2["memory"]["control plane"],
        "n_worker_mb": c2["memory"]["worker-a"],
        "n_shared_services_mb": services_memory,
        "n_cases": cases,
    }


def _measure_case(case: Case, warm_up: list[Path], clips: list[Path], idle: list[Path]) -> dict:
    started = time.monotonic()
    _wait(lambda: all("ready." in p.read_text(errors="replace") for p in case.logs if p.exists())
          and all(p.exists() for p in case.logs), case, "run workers ready")  # fmt: skip
    ready_s = time.monotonic() - started
    warm_up_end = max(r.end_time for r in _drop_and_wait(case, warm_up))
    _wait_for_rebuild(case, warm_up_end)
    _wait_idle(case)
    memory_idle = _memory(case)
    cpu_before, pg_before, dropped = _cpu(case), _pg_stats(case), time.time()
    runs = _drop_and_wait(case, clips)
    cpu_after = _cpu(case)
    time.sleep(1)  # Postgres flushes its statistics about once a second
    pg_after = _pg_stats(case)
    starts, ends = [r.start_time for r in runs], [r.end_time for r in runs]
    window = max(ends) - min(starts)
    others = _other_runs(case, min(starts), max(ends))
    steps = _step_seconds(case, runs)
    samples = []
    for clip in idle:
        _wait_idle(case)
        at = time.time()
        [run] = _drop_and_wait(case, [clip])
        samples.append((run.start_time - run.create_timestamp.timestamp(), run.start_time - at))
    _wait_idle(case)
    create_to_start = [s[0] for s in samples]
    print(
        f"[n] {case.name}: ready after {ready_s:.0f} s, {60 * len(runs) / window:.1f} clips/min, "
        f"idle starts {[round(s, 2) for s in create_to_start]} s; {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return {
        "clips_per_min": 60 * len(runs) / window,
        "window_s": round(window, 1),
        "drop_to_last_end_s": round(max(ends) - dropped, 1),
        "median_run_s": round(statistics.median(e - s for s, e in zip(starts, ends, strict=True)), 2),
        "other_runs_in_window": others,
        "mean_step_s": steps,
        "cpu_s_drop_to_last_end": {k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_after},
        "postgres_drop_to_last_end": _pg_delta(pg_before, pg_after),
        "postgres_connections": pg_after.get("connections"),
        "ready_s": round(ready_s, 1),
        "idle_create_to_start_s": [round(s, 2) for s in create_to_start],
        "idle_create_to_start_median_s": round(statistics.median(create_to_start), 2) if samples else None,
        "idle_create_to_start_max_s": round(max(create_to_start), 2) if samples else None,
        "idle_drop_to_start_median_s": round(statistics.median(s[1] for s in samples), 2) if samples else None,
        "memory_after_warm_up": memory_idle,
        "memory": _memory(case),
    }


def _drop_and_wait(case: Case, clips: list[Path]) -> list:
    """Link `clips` into the control plane's inbox at once; the records of their runs once all have ended."""
    import dagster as dg

    before = {r.dagster_run.run_id for r in _video_runs(case)}
    for clip in clips:
        target = case.settings.inbox / f"{clip.parent.name}-{clip.name}"  # the sets' file names repeat
        try:
            os.link(clip, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copy2(clip, target)
    done = lambda: [r for r in _video_runs(case) if r.dagster_run.run_id not in before]  # noqa: E731
    _wait(lambda: len(new := done()) == len(clips) and all(r.end_time for r in new), case, f"{len(clips)} run(s) ended")
    runs = done()
    failed = [r.dagster_run.run_id for r in runs if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
    if failed:
        raise RuntimeError(f"{case.name}: run(s) {failed} did not succeed:\n{case.tails()}")
    return runs


def _step_seconds(case: Case, runs: list) -> dict:
    """Mean seconds of each step of the clip runs, and of the rest of a run (start to end, less its steps)."""
    totals: dict[str, float] = defaultdict(float)
    for run in runs:
        stats = case.instance.get_run_step_stats(run.dagster_run.run_id)
        for step in stats:
            if step.start_time and step.end_time:
                totals[step.step_key] += step.end_time - step.start_time
        totals["outside steps"] += (run.end_time - run.start_time) - sum(
            s.end_time - s.start_time for s in stats if s.start_time and s.end_time
        )
    return {name: round(total / len(runs), 2) for name, total in totals.items()}


def _video_runs(case: Case) -> list:
    import dagster as dg

    return list(case.instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": VIDEO_SENSOR})))


def _other_runs(case: Case, start: float, end: float, ended: bool = False) -> int:
    """Runs that are not video runs (the SQL models' automation) that overlapped the window (`ended`: and
    have ended)."""
    records = case.instance.get_run_records()
    return sum(
        1
        for r in records
        if r.dagster_run.tags.get("dagster/sensor_name") != VIDEO_SENSOR
        and r.start_time and r.start_time < end and (r.end_time or end) > start
        and (r.end_time is not None or not ended)
    )  # fmt: skip


def _wait_for_rebuild(case: Case, after: float) -> None:
    """Until the SQL models' automation has rebuilt them with the warm-up's predictions (it evaluates every
    30 s), so that its run does not fall into one case's window and not the other's; at most REBUILD_S."""
    deadline = time.monotonic() + REBUILD_S
    while time.monotonic() < deadline and not _other_runs(case, after, time.time(), ended=True):
        case.check()
        time.sleep(0.5)


def _wait_idle(case: Case) -> None:
    """Until no run is queued or in progress for IDLE_S (the SQL models' automation may start one)."""
    import dagster as dg

    from video_assets.runs import UNFINISHED

    quiet_since = time.monotonic()

    def idle() -> bool:
        nonlocal quiet_since
        if case.instance.get_runs(dg.RunsFilter(statuses=list(UNFINISHED)), limit=1):
            quiet_since = time.monotonic()
        return time.monotonic() - quiet_since >= IDLE_S

    _wait(idle, case, "no run in progress", poll_s=0.25)


def _wait(condition: Callable[[], bool], case: Case, what: str, poll_s: float = 0.5) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        case.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{case.name}: no {what} after {WAIT_S:.0f} s:\n{case.tails()}")
        time.sleep(poll_s)


# --- the cases -------------------------------------------------------------------------------------------


@contextmanager
def _environ(values: dict[str, str | None]) -> Iterator[None]:
    """os.environ with `values` (None: unset) for the block: local_services and the machines inherit it."""
    saved = dict(os.environ)
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _base_env(home: Path, workers: int) -> dict[str, str | None]:
    return {
        "VIDEO_ASSETS_HOME": str(home),
        "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
        "VIDEO_ASSETS_WORKERS": str(workers),  # run workers of the local case; concurrent runs in every case
        "VIDEO_ASSETS_CLUSTER": None,
        "VIDEO_ASSETS_DROP_FOLDERS": None,
        "VIDEO_ASSETS_SOURCE_QUEUES": None,
        "ROBOFLOW_API_KEY": None,
    }


@contextmanager
def _control_plane(name: str, folder: Path, env: dict[str, str | None]) -> Iterator[Case]:
    import dagster as dg

    from video_assets.runtime.instance import prepare_environment
    from video_assets.runtime.services import local_services
    from video_assets.settings import Settings

    with _environ(env):
        settings = Settings.from_env(dict(os.environ))
        prepare_environment(settings)
        with local_services(settings) as services, dg.DagsterInstance.get() as instance:
            yield Case(name, folder, settings, services, instance)


@contextmanager
def _local_case(folder: Path, workers: int) -> Iterator[Case]:
    with _control_plane("one machine", folder, _base_env(folder / "home", workers)) as case:
        case.logs.append(case.settings.logs_dir / "workers.log")
        yield case


@contextmanager
def _shared_services(folder: Path) -> Iterator[Shared]:
    folder.mkdir(parents=True, exist_ok=True)
    with (
        postgres(folder / "postgres") as pg,
        pgbouncer(pg, folder / "pgbouncer") as pooler,
        redis(folder / "redis") as rd,
        object_store(folder / "s3") as store,
    ):
        pids = {
            "postgres": _find_pid(["postgres", "-p", str(pg.port)]),
            "pgbouncer": pooler.process.pid,
            "redis": rd.process.pid,
            "seaweedfs": store.process.pid,
        }
        yield Shared(pg, pooler.port, f"redis://127.0.0.1:{rd.port}", store.endpoint, pids)


@contextmanager
def _cluster_case(
    folder: Path, shared: Shared, number: int, workers: int, machines: dict[str, int], pooled: bool = True
) -> Iterator[Case]:
    """`pooled`: Postgres through PgBouncer (what docs/many-machines.md recommends), else directly."""
    database = f"bench_n_{number}"
    shared.postgres.create_database(database)
    folder.mkdir(parents=True)
    pg = shared.postgres
    cluster = cluster_file(folder, pg, database, f"{shared.redis_url}/{number}", shared.endpoint, f"{BUCKET}/{database}",
                           port=shared.pooler_port if pooled else None)  # fmt: skip
    home = folder / "home"
    env = {
        **_base_env(home, workers),
        "VIDEO_ASSETS_CLUSTER": str(cluster),
        PASSWORD_ENV: pg.password,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    name = f"cluster, {len(machines)} worker machine{'s' if len(machines) > 1 else ''}"
    with _control_plane(name, folder, env) as case, ExitStack() as stack:
        case.shared_pids, case.database = shared.pids, (shared.postgres, database)
        for hostname, concurrency in machines.items():
            log = folder / f"{hostname}.log"
            case.logs.append(log)
            command = machine_command(hostname, [home], [CLI, "worker", "--concurrency", str(concurrency)])
            out = stack.enter_context(open(log, "ab"))
            case.machines[hostname] = subprocess.Popen(
                command, env={**os.environ, "VIDEO_ASSETS_HOME": str(folder / f"{hostname}-home")},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            yield case
        finally:
            for machine in case.machines.values():
                _stop_group(machine)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the machine's process group (an idle Celery worker stops at once), SIGKILL after 10 s."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 30)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _pg_stats(case: Case) -> dict:
    """Sessions (connections opened), transactions and rows of the case's database so far (pg_stat_database),
    its open connections, and the rows read by sequential scans of each table (pg_stat_user_tables)."""
    if case.database is None:
        return {}
    pg, name = case.database
    db = pg.connect(name)
    try:
        cursor = db.cursor()
        cursor.execute(
            "select sessions, xact_commit, tup_returned, tup_fetched, tup_inserted + tup_updated + tup_deleted, numbackends"
            " from pg_stat_database where datname = %s",
            (name,),
        )
        keys = ("sessions", "transactions", "rows_returned", "rows_fetched", "rows_written", "connections")
        stats: dict = dict(zip(keys, cursor.fetchone(), strict=True))
        cursor.execute("select relname, seq_scan, coalesce(seq_tup_read, 0) from pg_stat_user_tables")
        stats["seq_scans"] = {table: (scans, rows) for table, scans, rows in cursor.fetchall()}
    finally:
        db.close()
    return stats


def _pg_delta(before: dict, after: dict) -> dict:
    """What the case's database did between two _pg_stats: counts, and the 3 tables most read by sequential scans."""
    if not after:
        return {}
    delta = {k: v - before[k] for k, v in after.items() if k not in ("connections", "seq_scans")}
    scans = {t: (n - before["seq_scans"].get(t, (0, 0))[0], r - before["seq_scans"].get(t, (0, 0))[1])
             for t, (n, r) in after["seq_scans"].items()}  # fmt: skip
    top = sorted(scans.items(), key=lambda item: -item[1][1])[:3]
    delta["seq_scans"] = {table: f"{n} scans, {r:,} rows" for table, (n, r) in top if r}
    return delta


# --- memory ----------------------------------------------------------------------------------------------


def _memory(case: Case) -> dict:
    """MB of each part with the workers idle (the shared services are measured once, at the end)."""
    return {part: _tree_memory(pids) for part, pids in _parts(case).items() if part not in case.shared_pids}


def _parts(case: Case) -> dict[str, list[int]]:
    """The processes of each part of a case: the control plane's services, the run workers (local case) or
    each worker machine, and each shared service."""
    services = {s.name: s.process.pid for s in case.services.services}
    parts = {"control plane": [pid for name, pid in services.items() if name != "run workers"]}
    if "run workers" in services:
        parts["run workers"] = [services["run workers"]]
    parts.update({hostname: [machine.pid] for hostname, machine in case.machines.items()})
    parts.update({name: [pid] for name, pid in case.shared_pids.items()})
    return parts


def _cpu(case: Case) -> dict[str, float]:
    """CPU seconds used so far by each part (and by this process, which polls the instance): user + system
    of each process of its tree, with its reaped children's."""
    children = _children()
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for part, roots in _parts(case).items():
        total = 0
        for pid in _tree(roots, children):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        used[part] = total / ticks
    me = os.times()
    used["benchmark process"] = me.user + me.system
    return used


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(stat.parent.name))
    return children


def _tree(roots: list[int], children: dict[int, list[int]]) -> list[int]:
    seen: list[int] = []
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.append(pid)
            stack.extend(children.get(pid, ()))
    return seen


def _tree_memory(roots: list[int]) -> dict:
    """RSS and PSS summed over `roots` and all their descendants."""
    totals = {"Rss": 0, "Pss": 0}
    pids = _tree(roots, _children())
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                field_name, _, rest = line.partition(":")
                if field_name in totals:
                    totals[field_name] += int(rest.split()[0])  # kB
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or a kernel thread
    return {"rss_mb": round(totals["Rss"] / 1024), "pss_mb": round(totals["Pss"] / 1024), "processes": len(pids)}


def _find_pid(args: list[str]) -> int:
    """The process whose command line starts with a program named args[0] and holds the rest in order."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            parts = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if parts and Path(parts[0]).name == args[0] and _holds(parts, args[1:]):
            return int(cmdline.parent.name)
    raise RuntimeError(f"no process {' '.join(args)}")


def _holds(parts: list[str], needle: list[str]) -> bool:
    return any(parts[i : i + len(needle)] == needle for i in range(len(parts)))
