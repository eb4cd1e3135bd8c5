"""Every setting and every path derived from VIDEO_ASSETS_HOME, in one place.

Settings are read once from the environment when the code location loads (or when the CLI starts),
so the Dagster UI, the daemon, the CLI and the runs they launch all agree on where data lives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Mapping

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DEFAULT_INBOX_SOURCE = "inbox"
DEFAULT_CAMERAS_START = date(2026, 1, 1)


class SettingsError(ValueError):
    """A setting in the environment is malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class DropFolder:
    """A watched folder; every video found in it is tagged with `source`."""

    source: str
    path: Path


@dataclass(frozen=True)
class Settings:
    home: Path
    extra_drop_folders: tuple[DropFolder, ...] = ()
    sensor_interval_s: int = 5
    sql_dir: Path = REPO_DIR / "dbt_like_sql"
    max_concurrent_runs: int = field(default_factory=lambda: os.cpu_count() or 2)
    backfill_cron: str = "0 2 * * *"
    backfill_batch: int = 50
    cameras_file: Path | None = None  # None: <home>/cameras.toml
    cameras_start: date = DEFAULT_CAMERAS_START  # first hour of the camera window partitions (UTC)

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def drop_folders(self) -> tuple[DropFolder, ...]:
        return (DropFolder(DEFAULT_INBOX_SOURCE, self.inbox), *self.extra_drop_folders)

    @property
    def predictions_dir(self) -> Path:
        return self.home / "predictions"

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
        """Camera segments (staged Parquet), worker status and locks, one folder per camera."""
        return self.home / "streams"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def state_dir(self) -> Path:
        """Working state: the content-hash cache, the DuckDB build file."""
        return self.home / "state"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("VIDEO_ASSETS_HOME") or "./data").expanduser().resolve()
        return cls(
            home=home,
            extra_drop_folders=parse_drop_folders(env.get("VIDEO_ASSETS_DROP_FOLDERS", "")),
            sensor_interval_s=env_number(env, "VIDEO_ASSETS_SENSOR_INTERVAL", int, 5),
            sql_dir=Path(env.get("VIDEO_ASSETS_SQL_DIR") or REPO_DIR / "dbt_like_sql").resolve(),
            max_concurrent_runs=env_number(env, "VIDEO_ASSETS_MAX_CONCURRENT_RUNS", int, os.cpu_count() or 2),
            backfill_cron=env.get("VIDEO_ASSETS_BACKFILL_CRON") or "0 2 * * *",
            backfill_batch=env_number(env, "VIDEO_ASSETS_BACKFILL_BATCH", int, 50),
            cameras_file=_optional_path(env, "VIDEO_ASSETS_CAMERAS"),
            cameras_start=_date(env, "VIDEO_ASSETS_CAMERAS_START", DEFAULT_CAMERAS_START),
        )


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
        raise SettingsError(
            f"VIDEO_ASSETS_DROP_FOLDERS names must be unique and not {DEFAULT_INBOX_SOURCE!r}: {names}"
        )
    return tuple(folders)


def env_number(env: Mapping[str, str], name: str, kind: type, default: Any, allow_zero: bool = False) -> Any:
    """A positive int or float from the environment (or zero when allowed), else a SettingsError saying so."""
    raw = env.get(name)
    if not raw:
        return default
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
