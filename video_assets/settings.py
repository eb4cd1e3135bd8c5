"""Every setting, read from the environment in this one module; every path derived from VIDEO_ASSETS_HOME.

Settings are read once when the code location loads (or when the CLI starts), so the Dagster UI,
the daemon, the CLI, the workers and the runs they launch all agree on where data lives. Secrets
are never stored here: `ROBOFLOW_API_KEY` reaches resources as a `dagster.EnvVar` (read when a run
starts), and camera passwords (`${NAME}` in a camera URL) are read with `secret()` at connect time.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from video_assets.backends.base import BackendError
from video_assets.backends.registry import BACKENDS, DEFAULT_KIND, KINDS
from video_assets.backends.resource import backend_fields, parse_source_workflows
from video_assets.roboflow import DEFAULT_API_URL

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DEFAULT_INBOX_SOURCE = "inbox"
API_KEY_ENV = "ROBOFLOW_API_KEY"
WEBHOOK_URL_ENV = "VIDEO_ASSETS_WEBHOOK_URL"
WEBHOOK_SECRET_ENV = "VIDEO_ASSETS_WEBHOOK_SECRET"


class SettingsError(ValueError):
    """A setting in the environment is malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class DropFolder:
    """A watched folder; every video found in it is tagged with `source`."""

    source: str
    path: Path


@dataclass(frozen=True)
class BackendSettings:
    """The `backend` resource's defaults: its kind, and the fields the environment (or a test) sets.

    Every other field keeps the default written in its backend's config class (backends/registry.py).
    """

    kind: str = DEFAULT_KIND
    values: Mapping[str, Any] = field(default_factory=dict)
    api_key_set: bool = False  # ROBOFLOW_API_KEY is set: bind it as an EnvVar (an unset EnvVar fails every run)


@dataclass(frozen=True)
class VisionEventsSettings:
    """The Vision Events sink; None in Settings means it is off."""

    use_case: str
    api_url: str


@dataclass(frozen=True)
class PostgresSettings:
    """Dagster's instance storage and the shared ledgers; the password is read from `password_env`."""

    host: str
    port: int = 5432
    database: str = "video_assets"
    user: str = "video_assets"
    password_env: str | None = None


@dataclass(frozen=True)
class RedisSettings:
    """The Celery broker and result backend; the URL holds no password (it is read from `password_env`)."""

    url: str
    password_env: str | None = None
    visibility_timeout_s: int = 48 * 3600  # longer than the longest run: a run is never delivered twice


@dataclass(frozen=True)
class StoreSettings:
    """Every byte a run reads or writes, in an S3-compatible object store (credentials from the environment:
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)."""

    url: str  # s3://bucket/prefix
    endpoint: str | None = None  # e.g. http://10.0.0.2:8333 for a store that is not AWS
    region: str = "us-east-1"


@dataclass(frozen=True)
class ClusterSettings:
    """Many machines: shared services instead of local files (the file VIDEO_ASSETS_CLUSTER names)."""

    path: Path
    postgres: PostgresSettings
    redis: RedisSettings
    store: StoreSettings


@dataclass(frozen=True)
class Keep:
    """How much of one kind of data to keep: what is younger than `days`, and at most `bytes` of it
    (the oldest goes first). None is no limit; both None keeps everything."""

    days: float | None = None
    bytes: int | None = None

    @property
    def forever(self) -> bool:
        return self.days is None and self.bytes is None


SOURCE_ACTIONS = ("keep", "move", "delete")


@dataclass(frozen=True)
class RetentionSettings:
    """What the `retention` job removes (video_assets/retention/); docs/running-for-months.md explains each kind."""

    segments: Keep = Keep(days=2)  # camera segments of hours already published to predictions/
    logs: Keep = Keep(days=14)  # rotated service logs, camera logs and `process` logs
    log_rotate_bytes: int = 64 * 2**20  # a service's log is rotated (copied, gzipped, truncated) above this
    runs: Keep = Keep(days=7)  # finished runs, unless one holds the latest materialization of a partition
    compute_logs: Keep = Keep(days=7)  # steps' captured stdout/stderr, also of the runs that are kept
    sources: Keep = Keep(days=1)  # how long after processing a source video stays where it was dropped
    source_action: str = "keep"  # keep | move (to <drop folder>/processed/) | delete
    predictions: Keep = Keep()  # Parquet: kept forever unless asked
    cron: str = "30 3 * * *"


@dataclass(frozen=True)
class DiskGuard:
    """Below this much free space, camera workers pause and the drop-folder sensor launches no runs."""

    min_free_bytes: int = 2**30
    min_free_percent: float | None = None  # when set, used instead of min_free_bytes

    @property
    def setting(self) -> str:
        """The threshold as written in VIDEO_ASSETS_MIN_FREE, for messages."""
        return f"{self.min_free_percent:g}%" if self.min_free_percent is not None else format_bytes(self.min_free_bytes)


NOTIFY_EVENTS = ("video_failed", "hosted_job", "camera", "disk_guard", "data_test")


@dataclass(frozen=True)
class NotifySettings:
    """The webhook sink; None in Settings means it is off. The URL and the signing secret are secrets:
    read with `secret()` when a notification is sent, never kept here."""

    events: frozenset[str] = frozenset(NOTIFY_EVENTS)
    camera_down_after_s: float = 120.0
    max_age_s: float = 24 * 3600.0  # a notification not delivered by then is dropped (and logged)


@dataclass(frozen=True)
class Settings:
    home: Path
    extra_drop_folders: tuple[DropFolder, ...] = ()
    sensor_interval_s: int = 5
    sql_dir: Path = REPO_DIR / "dbt_like_sql"
    source_queues: Mapping[str, str] = field(default_factory=dict)  # drop folder -> run-worker queue of its videos
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)  # run worker processes (and concurrent runs)
    worker_max_runs: int = 50  # a worker process is replaced after this many runs, to bound leaks
    backfill_cron: str = "0 2 * * *"
    backfill_batch: int = 50
    cameras_file: Path | None = None  # None: <home>/cameras.toml
    cameras_start: date = date(2026, 1, 1)  # first hour of the camera window partitions (UTC)
    backend: BackendSettings = BackendSettings()
    vision_events: VisionEventsSettings | None = None
    cluster: ClusterSettings | None = None  # None: one machine, everything under `home`
    media_port: int = 3010  # the media server `video-assets dev` runs beside the UI (previews, snapshots)
    media_url: str | None = None  # where browsers reach it; None: http://127.0.0.1:<media_port>

    @property
    def media_base_url(self) -> str:
        return (self.media_url or f"http://127.0.0.1:{self.media_port}").rstrip("/")

    retention: RetentionSettings = RetentionSettings()
    disk_guard: DiskGuard = DiskGuard()
    notify: NotifySettings | None = None

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def drop_folders(self) -> tuple[DropFolder, ...]:
        return (DropFolder(DEFAULT_INBOX_SOURCE, self.inbox), *self.extra_drop_folders)

    @property
    def models_dir(self) -> Path:
        """Local model packages (`video-assets model import`), one folder each."""
        return self.home / "models"

    @property
    def predictions_dir(self) -> Path:
        return self.home / "predictions"

    def shared(self, folder: str) -> tuple[str, str | None, str]:
        """(url, endpoint, region) of a data folder every run worker reads and writes: under the home on
        one machine; on many, under the object store's prefix, so workers need no shared disk."""
        if self.cluster is None:
            return str(self.home / folder), None, StoreSettings.region
        store = self.cluster.store
        return f"{store.url.rstrip('/')}/{folder}", store.endpoint, store.region

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def warehouse_build_path(self) -> Path:
        """Where SQL models are built before being published to warehouse_path."""
        return self.state_dir / "warehouse.build.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def camera_config_path(self) -> Path:
        return self.cameras_file or self.home / "cameras.toml"

    @property
    def streams_dir(self) -> Path:
        """This machine's camera folders (locks, segments waiting to be published); on one machine also the
        camera store of segments and status files (on many it is `streams/` in the object store)."""
        return self.home / "streams"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def state_dir(self) -> Path:
        """Working state: the content-hash cache, the hosted job ledger, the DuckDB build file, the run queue."""
        return self.home / "state"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls(home=Path("."))
        home = Path(env.get("VIDEO_ASSETS_HOME") or "./data").expanduser().resolve()
        extra_drop_folders = parse_drop_folders(env.get("VIDEO_ASSETS_DROP_FOLDERS", ""))
        return cls(
            home=home,
            extra_drop_folders=extra_drop_folders,
            source_queues=parse_pairs("VIDEO_ASSETS_SOURCE_QUEUES", env.get("VIDEO_ASSETS_SOURCE_QUEUES", "")),
            sensor_interval_s=_number(env, "VIDEO_ASSETS_SENSOR_INTERVAL", int, defaults.sensor_interval_s),
            sql_dir=Path(env.get("VIDEO_ASSETS_SQL_DIR") or defaults.sql_dir).resolve(),
            workers=_number(env, "VIDEO_ASSETS_WORKERS", int, defaults.workers),
            worker_max_runs=_number(env, "VIDEO_ASSETS_WORKER_MAX_RUNS", int, defaults.worker_max_runs),
            backfill_cron=env.get("VIDEO_ASSETS_BACKFILL_CRON") or defaults.backfill_cron,
            backfill_batch=_number(env, "VIDEO_ASSETS_BACKFILL_BATCH", int, defaults.backfill_batch),
            cameras_file=_optional_path(env, "VIDEO_ASSETS_CAMERAS"),
            cameras_start=_date(env, "VIDEO_ASSETS_CAMERAS_START", defaults.cameras_start),
            backend=backend_settings(env, (DEFAULT_INBOX_SOURCE, *(f.source for f in extra_drop_folders))),
            vision_events=vision_events_settings(env),
            cluster=load_cluster(Path(env["VIDEO_ASSETS_CLUSTER"])) if env.get("VIDEO_ASSETS_CLUSTER") else None,
            media_port=_number(env, "VIDEO_ASSETS_MEDIA_PORT", int, defaults.media_port),
            media_url=env.get("VIDEO_ASSETS_MEDIA_URL") or None,
            retention=retention_settings(env),
            disk_guard=disk_guard_settings(env),
            notify=notify_settings(env),
        )


def secret(name: str) -> str | None:
    """A secret from the environment, read at the moment it is needed and never kept in Settings."""
    return os.environ.get(name) or None


def url_with_password(url: str | None, password_env: str | None) -> str | None:
    """A service URL with the password read from the environment variable `password_env`, if it is set."""
    password = secret(password_env) if password_env else None
    if not url or not password or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://:{quote(password, safe='')}@{rest.split('@')[-1]}"


def backend_settings(env: Mapping[str, str], sources: tuple[str, ...] = (DEFAULT_INBOX_SOURCE,)) -> BackendSettings:
    """The backend fields the environment sets: each field of a registered backend names its variable.
    `sources` are the drop folders, which VIDEO_ASSETS_SOURCE_WORKFLOWS may give their own workflow."""
    values: dict[str, Any] = {}
    for name, info in backend_fields().items():
        variable = (info.json_schema_extra or {}).get("env") if isinstance(info.json_schema_extra, dict) else None
        raw = env.get(str(variable)) if variable else None
        if raw:
            values[name] = _field_value(str(variable), raw.strip(), info)
    kind = str(values.pop("kind", DEFAULT_KIND)).lower().replace("-", "_")
    if kind not in KINDS:
        raise SettingsError(
            f"VIDEO_ASSETS_BACKEND={env.get('VIDEO_ASSETS_BACKEND')!r} must be one of {', '.join(KINDS)}"
        )
    _check_source_workflows(str(values.get("source_workflows", "")), sources, kind)
    return BackendSettings(kind=kind, values=values, api_key_set=bool(env.get(API_KEY_ENV)))


def _check_source_workflows(text: str, sources: tuple[str, ...], kind: str) -> None:
    """Each source named is a drop folder, and the backend runs inline workflow files."""
    try:
        named = parse_source_workflows(text)
    except BackendError as exc:
        raise SettingsError(str(exc)) from None
    unknown = sorted(set(named) - set(sources))
    if unknown:
        raise SettingsError(
            f"VIDEO_ASSETS_SOURCE_WORKFLOWS names {', '.join(unknown)}, which is not a drop folder "
            f"(drop folders: {', '.join(sources)}; add it to VIDEO_ASSETS_DROP_FOLDERS as name=path)"
        )
    if named and not BACKENDS[kind].runs_workflow_files:
        raise SettingsError(
            f"VIDEO_ASSETS_SOURCE_WORKFLOWS gives drop folders inline workflow files, which the {kind} backend does not run"
        )


def vision_events_settings(env: Mapping[str, str]) -> VisionEventsSettings | None:
    """On when VIDEO_ASSETS_VISION_EVENTS_USE_CASE is set."""
    use_case = (env.get("VIDEO_ASSETS_VISION_EVENTS_USE_CASE") or "").strip()
    if not use_case:
        return None
    return VisionEventsSettings(use_case=use_case, api_url=env.get("ROBOFLOW_API_URL") or DEFAULT_API_URL)


def parse_pairs(name: str, spec: str) -> dict[str, str]:
    """`a=x,b=y` into {a: x, b: y}."""
    pairs = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SettingsError(f"{name} entry {item!r} is not of the form name=value (for example {name}='faces=gpu')")
        pairs[key.strip()] = value.strip()
    return pairs


def load_cluster(path: Path) -> ClusterSettings:
    """The cluster file: `[postgres]`, `[redis]` and `[store]` tables (docs/many-machines.md)."""
    path = path.expanduser().resolve()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"VIDEO_ASSETS_CLUSTER={path}: cannot be read as TOML ({exc})") from None
    sections = {"postgres": PostgresSettings, "redis": RedisSettings, "store": StoreSettings}
    missing = sorted(set(sections) - set(data))
    unknown = sorted(set(data) - set(sections))
    if missing or unknown:
        raise SettingsError(f"{path}: needs the tables {sorted(sections)} (missing {missing}, unknown {unknown})")
    parsed = {}
    for name, kind in sections.items():
        try:
            parsed[name] = kind(**data[name])
        except TypeError as exc:
            raise SettingsError(f"{path} [{name}]: {exc}; see docs/many-machines.md") from None
    if not parsed["store"].url.startswith("s3://"):
        raise SettingsError(f"{path} [store]: url = {parsed['store'].url!r} must be s3://bucket/prefix")
    return ClusterSettings(path=path, **parsed)


def retention_settings(env: Mapping[str, str]) -> RetentionSettings:
    defaults = RetentionSettings()
    action = (env.get("VIDEO_ASSETS_PROCESSED_SOURCES") or defaults.source_action).strip().lower()
    if action not in SOURCE_ACTIONS:
        raise SettingsError(f"VIDEO_ASSETS_PROCESSED_SOURCES={action!r} must be one of {', '.join(SOURCE_ACTIONS)}")
    rotate = env.get("VIDEO_ASSETS_LOG_ROTATE_SIZE")
    return RetentionSettings(
        segments=_keep(env, "VIDEO_ASSETS_KEEP_SEGMENTS", defaults.segments),
        logs=_keep(env, "VIDEO_ASSETS_KEEP_LOGS", defaults.logs),
        log_rotate_bytes=parse_bytes("VIDEO_ASSETS_LOG_ROTATE_SIZE", rotate) if rotate else defaults.log_rotate_bytes,
        runs=_keep(env, "VIDEO_ASSETS_KEEP_RUNS", defaults.runs, days_only=True),
        compute_logs=_keep(env, "VIDEO_ASSETS_KEEP_COMPUTE_LOGS", defaults.compute_logs, days_only=True),
        sources=_keep(env, "VIDEO_ASSETS_KEEP_SOURCES", defaults.sources),
        source_action=action,
        predictions=_keep(env, "VIDEO_ASSETS_KEEP_PREDICTIONS", defaults.predictions),
        cron=env.get("VIDEO_ASSETS_RETENTION_CRON") or defaults.cron,
    )


def disk_guard_settings(env: Mapping[str, str]) -> DiskGuard:
    """VIDEO_ASSETS_MIN_FREE: a size (`2GB`) or a share of the disk (`5%`)."""
    raw = (env.get("VIDEO_ASSETS_MIN_FREE") or "").strip()
    if not raw:
        return DiskGuard()
    if raw.endswith("%"):
        percent = _parse_number("VIDEO_ASSETS_MIN_FREE", raw[:-1].strip(), float, allow_zero=True)
        if percent >= 100:
            raise SettingsError(f"VIDEO_ASSETS_MIN_FREE={raw!r}: a percentage must be below 100")
        return DiskGuard(min_free_percent=percent)
    return DiskGuard(min_free_bytes=parse_bytes("VIDEO_ASSETS_MIN_FREE", raw, allow_zero=True))


def notify_settings(env: Mapping[str, str]) -> NotifySettings | None:
    """On when VIDEO_ASSETS_WEBHOOK_URL is set; every notification is signed, so the secret must be set too."""
    if not env.get(WEBHOOK_URL_ENV):
        return None
    if not env.get(WEBHOOK_SECRET_ENV):
        raise SettingsError(
            f"{WEBHOOK_URL_ENV} is set but {WEBHOOK_SECRET_ENV} is not: every notification is signed with it "
            "(HMAC-SHA256), so the receiver can check it came from here. Set it to a long random string."
        )
    defaults = NotifySettings()
    events = defaults.events
    if env.get("VIDEO_ASSETS_NOTIFY"):
        events = frozenset(e.strip() for e in env["VIDEO_ASSETS_NOTIFY"].split(",") if e.strip())
        unknown = sorted(events - set(NOTIFY_EVENTS))
        if unknown:
            raise SettingsError(
                f"VIDEO_ASSETS_NOTIFY names unknown events {unknown}; choose from {', '.join(NOTIFY_EVENTS)}"
            )
    return NotifySettings(
        events=events,
        camera_down_after_s=_number(env, "VIDEO_ASSETS_CAMERA_DOWN_AFTER", float, defaults.camera_down_after_s),
    )


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:([KMGT])I?)?B?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([dh])$", re.IGNORECASE)


def parse_bytes(name: str, raw: str, allow_zero: bool = False) -> int:
    """`500MB`, `2GB`, `1.5T` (powers of 1024; `GiB` is read the same), or a plain number of bytes."""
    match = _SIZE.match(raw.strip())
    if match is None:
        raise SettingsError(f"{name}={raw!r} must be a size such as 500MB, 2GB or 1TB")
    value = int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])
    if value <= 0 and not allow_zero:
        raise SettingsError(f"{name}={raw!r} must be more than 0 bytes")
    return value


def parse_keep(name: str, raw: str, days_only: bool = False) -> Keep:
    """`forever`, an age (`7d`, `12h`), a size (`50GB`), or both (`7d,50GB`: whichever removes more)."""
    text = raw.strip().lower()
    if text in ("forever", "all", "keep"):
        return Keep()
    days = size = None
    for part in (p.strip() for p in text.split(",")):
        age = _AGE.match(part)
        if age:
            days = float(age.group(1)) / (24 if age.group(2) == "h" else 1)
        elif days_only:
            raise SettingsError(f"{name}={raw!r} must be an age such as 30d or 12h, or `forever`")
        else:
            try:
                size = parse_bytes(name, part)
            except SettingsError:
                raise SettingsError(
                    f"{name}={raw!r} must be `forever`, an age (7d, 12h), a size (50GB), or both (7d,50GB)"
                ) from None
    return Keep(days=days, bytes=size)


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def _keep(env: Mapping[str, str], name: str, default: Keep, days_only: bool = False) -> Keep:
    raw = env.get(name)
    return parse_keep(name, raw, days_only) if raw else default


def parse_drop_folders(spec: str) -> tuple[DropFolder, ...]:
    """Parse `name=path,name2=path2` into drop folders (the inbox is always watched too)."""
    folders = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path.strip():
            raise SettingsError(
                f"VIDEO_ASSETS_DROP_FOLDERS entry {item!r} is not of the form name=path "
                "(for example: VIDEO_ASSETS_DROP_FOLDERS='lobby=/mnt/lobby,dock=/mnt/dock')"
            )
        if not name.replace("_", "").replace("-", "").isalnum():
            raise SettingsError(
                f"VIDEO_ASSETS_DROP_FOLDERS source name {name!r} may use only letters, digits, '-' and '_'"
            )
        folders.append(DropFolder(name, Path(path.strip()).expanduser().resolve()))
    names = [f.source for f in folders]
    if DEFAULT_INBOX_SOURCE in names or len(set(names)) != len(names):
        raise SettingsError(f"VIDEO_ASSETS_DROP_FOLDERS names must be unique and not {DEFAULT_INBOX_SOURCE!r}: {names}")
    return tuple(folders)


def _field_value(variable: str, raw: str, info: Any) -> Any:
    """A backend field's value from its variable, checked against the field's type and bounds."""
    annotation = info.annotation
    kind = next((t for t in (int, float) if annotation is t or annotation == t | None), str)
    if kind is str:
        return raw
    least = next((getattr(m, "ge", None) for m in info.metadata if getattr(m, "ge", None) is not None), None)
    return _parse_number(variable, raw, kind, allow_zero=least == 0)


def _number(env: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    raw = env.get(name)
    return _parse_number(name, raw, kind) if raw else default


def _parse_number(name: str, raw: str, kind: type, allow_zero: bool = False) -> Any:
    """A positive int or float (or zero when allowed), else a SettingsError saying what is wanted."""
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not allow_zero):
        least = 0 if allow_zero else 1
        wanted = f"a whole number of at least {least}" if kind is int else "a positive number"
        raise SettingsError(f"{name}={raw!r} must be {wanted}")
    return value


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw).expanduser().resolve() if raw else None


def _date(env: Mapping[str, str], name: str, default: date) -> date:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} must be a date written YYYY-MM-DD") from None
