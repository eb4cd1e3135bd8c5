"""Where bytes live, and the one rule for writing them: nothing half-written is ever visible.

Every writer in the project (per-video Parquet, camera segments and hours, worker status files, the
published warehouse, previews and track snapshots) goes through this module:

- `table_file` is where a table of one video lives: `<root>/<table>/video_id=<key>/part-0.parquet`
  (hive style, so readers glob `*/*.parquet`).
- `Staging` writes under hidden temporary names beside the final paths (same filesystem) and
  publishes them with `os.replace`, in order, only when everything was written; on error or a kill
  the temporary files stay hidden (they start with `.` and end in `.tmp`) and `sweep_stale_temps`
  reclaims them later.
- `write_folder` publishes a folder of small files (pictures) whole, by one directory rename; a new
  version goes under a new name and `remove_other_versions` drops the ones it replaced.
- `frame_rows` and `video_row` build the rows of the `detections`, `frames` and `videos` tables, for
  files and cameras alike (`LineCounters` turns each frame's line counter totals into crossings;
  `frame_tallies` counts its boxes per class and lists its tracks).
- `Store` is where a tree of data lives: a local folder on one machine (`LocalStore`), an S3 bucket
  prefix on many (`ObjectStore`, through fsspec's s3fs). Writers write local files and publish them
  whole: a rename locally; on S3, which has no rename, one PUT or a completed multipart upload (s3fs
  aborts the upload on failure), so a reader never sees half an object. A folder published to S3
  becomes visible when its `last` file is (its readers look for that one).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from video_assets.backends.base import BackendIdentity, FramePrediction

PART_NAME = "part-0.parquet"
TEMP_SUFFIX = ".tmp"


def table_key(table: str, video_id: str) -> str:
    """Where one video's rows of a table live, below the predictions root (hive-style)."""
    return f"{table}/video_id={video_id}/{PART_NAME}"


def table_file(root: Path, table: str, video_id: str) -> Path:
    return root / table_key(table, video_id)


def new_token() -> str:
    """Distinguishes the temporary files of concurrent writers of the same path."""
    return uuid.uuid4().hex[:8]


def temp_path(final: Path, token: str) -> Path:
    """The hidden name `final` is written under; globs for `*.parquet` never match it."""
    return final.with_name(f".{final.name}.{token}{TEMP_SUFFIX}")


class Staging:
    """Files written under hidden names, published together (in the order given) or not at all."""

    def __init__(self, finals: Mapping[str, Path], stale_after_s: float):
        self.token = new_token()
        self.finals = dict(finals)
        self.temps = {name: temp_path(final, self.token) for name, final in self.finals.items()}
        for folder in {temp.parent for temp in self.temps.values()}:
            folder.mkdir(parents=True, exist_ok=True)
            sweep_stale_temps(folder, stale_after_s)

    def publish(self) -> dict[str, str]:
        """Rename every temporary file into place; the last one given is the last to appear. Where each is."""
        for name, temp in self.temps.items():
            os.replace(temp, self.finals[name])
        return {name: str(final) for name, final in self.finals.items()}

    def discard(self) -> None:
        for temp in self.temps.values():
            temp.unlink(missing_ok=True)


def publish_folder(build: Path, final: Path) -> None:
    """Make a folder written under a hidden name appear whole (a directory rename)."""
    os.rename(build, final)


def write_folder(final: Path, files: Mapping[str, bytes], stale_after_s: float) -> Path:
    """Write `files` (name -> bytes) into a hidden folder beside `final`, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(final.parent, stale_after_s)
    build = temp_path(final, new_token())
    build.mkdir()
    try:
        for name, data in files.items():
            (build / name).write_bytes(data)
        publish_folder(build, final)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return final


def remove_other_versions(parent: Path, prefix: str, keep: Path) -> None:
    """Published folders named `<prefix>...` in `parent`, other than `keep`: versions a newer one replaced."""
    for entry in parent.glob(f"{prefix}*"):
        if entry.is_dir() and entry != keep and not entry.name.startswith("."):
            shutil.rmtree(entry, ignore_errors=True)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace a small JSON file atomically, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path, f"{os.getpid()}")
    with _removed_on_error(temp):
        temp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
        os.replace(temp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def copy_file(source: Path, final: Path) -> None:
    """Copy `source` over `final` so that readers see either the old file or the new one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = temp_path(final, f"{os.getpid()}")
    with _removed_on_error(partial):
        shutil.copyfile(source, partial)
        os.replace(partial, final)


@contextmanager
def _removed_on_error(temp: Path) -> Iterator[None]:
    """A write that fails (a full disk: ENOSPC) takes its partial file with it."""
    try:
        yield
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def sweep_stale_temps(folder: Path, older_than_s: float) -> None:
    """Temporary files or folders a killed writer left behind are invisible; reclaim them once clearly abandoned."""
    if not folder.is_dir():
        return
    cutoff = time.time() - older_than_s
    for entry in folder.glob(f".*{TEMP_SUFFIX}"):
        try:
            if entry.stat().st_mtime >= cutoff:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except FileNotFoundError:
            pass


class LineCounters:
    """The workflow's cumulative line counters (scalar outputs named *count_in / *count_out, as
    line_counter's count_in and count_out) frame after frame: each frame's crossings are its total minus
    the previous frame's, or its total when it fell below that (the counter restarted with its worker).

    Counted when frames are written, so that the SQL models read crossings instead of parsing every
    frame's outputs and ordering all of a camera's frames. One per video, or per camera for as long as
    its worker runs: a camera's counters run on across its hours."""

    def __init__(self) -> None:
        self._previous: dict[str, int | None] = {}

    def step(self, outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        counts = []
        for counter in sorted(k for k in outputs if k.endswith(("count_in", "count_out"))):
            total, previous = _whole_number(outputs[counter]), self._previous.get(counter)
            crossings = None if total is None else total - (previous or 0)
            if crossings is not None and crossings < 0:
                crossings = total
            counts.append({"counter": counter, "total": total, "crossings": crossings})
            self._previous[counter] = total
        return counts


def _whole_number(value: Any) -> int | None:
    """What the SQL's try_cast(<the JSON value as text> AS BIGINT) gives: a number rounded half away from
    zero, or None (true, text that is not a number, a list)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(math.copysign(math.floor(abs(value) + 0.5), value))
    return None


def frame_rows(
    video_id: str,
    source: str,
    frame: FramePrediction,
    frame_ts: datetime | int,
    identity: BackendIdentity,
    counters: LineCounters,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The `detections` rows and the `frames` row of one processed frame (`counters`: of its video or camera).
    The frame row also tallies its boxes (frame_tallies), so that the SQL models count frames per class or
    per track from the frames, not by grouping every box by frame."""
    common = {
        "video_id": video_id,
        "source": source,
        "frame_idx": frame.frame_idx,
        "time_offset_s": frame.time_offset_s,
        "frame_ts": frame_ts,
        "workflow_version": identity.workflow_version,
        "backend": identity.backend,
    }
    detections = [{**common, **det.__dict__} for det in frame.detections]
    outputs = json.dumps(frame.outputs, sort_keys=True)
    return detections, {
        **common,
        "detection_count": len(frame.detections),
        "outputs": outputs,
        "line_counts": counters.step(frame.outputs),
        **frame_tallies([(det.class_name, det.tracker_id) for det in frame.detections]),
    }


def frame_tallies(boxes: list[tuple[str, int | None]]) -> dict[str, list]:
    """A frame's `class_counts` (its boxes per class, by name) and `tracker_ids` (distinct, ascending), from
    its boxes' (class_name, tracker_id)."""
    return {
        "class_counts": [{"class_name": name, "boxes": n} for name, n in sorted(Counter(c for c, _ in boxes).items())],
        "tracker_ids": sorted({tracker for _, tracker in boxes if tracker is not None}),
    }


def video_row(
    *,
    video_id: str,
    source: str,
    file: str,
    identity: BackendIdentity,
    duration_s: float,
    fps: float,
    size: tuple[int, int],
    codec: str,
    recorded_at: datetime,
    frames_expected: int,
    frames_processed: int,
    sha256: str = "",
    bytes: int = 0,
    rotation: int = 0,
) -> dict[str, Any]:
    """The `videos` row of a video file or a camera hour: what was recorded, and how it was processed."""
    width, height = size
    return {
        "video_id": video_id,
        "source": source,
        "file": file,
        "sha256": sha256,
        "bytes": bytes,
        "duration_s": duration_s,
        "fps": fps,
        "width": width,
        "height": height,
        "rotation": rotation,
        "codec": codec,
        "recorded_at": recorded_at,
        "frames_expected": frames_expected,
        "frames_processed": frames_processed,
        "processed_at": datetime.now(UTC),
        "workflow_version": identity.workflow_version,
        "backend": identity.backend,
    }


@dataclass(frozen=True)
class StoredFile:
    size: int
    modified: float  # epoch seconds: when it was written


class Store(ABC):
    """A tree of data addressed by keys (`predictions/frames/video_id=x/part-0.parquet`)."""

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """What DuckDB reads and people see: a local path, or s3://bucket/prefix/key."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def names(self, key: str = "") -> list[str]:
        """Names directly under `key` (files and folders), sorted; none if it does not exist."""

    @abstractmethod
    def files(self, key: str = "") -> dict[str, StoredFile]:
        """Every file below `key` (its key relative to `key`), its size and time, in one listing."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The object's bytes (FileNotFoundError if there is none)."""

    @abstractmethod
    def put_file(self, local: Path, key: str) -> None:
        """Publish a finished local file whole (the local file is consumed)."""

    @abstractmethod
    def copy_in(self, local: Path, key: str) -> None:
        """Publish a copy of a local file whole (the local file stays)."""

    @abstractmethod
    def remove(self, key: str) -> None:
        """The object, or every object under `key`."""

    @abstractmethod
    def fetch(self, key: str, cache: Path) -> Path:
        """A local file with the object's bytes (for decoders that need a path)."""

    @abstractmethod
    def register(self, conn: Any) -> None:
        """Let a DuckDB connection read this store's uris."""

    @abstractmethod
    def staging(self, finals: Mapping[str, str], stale_after_s: float) -> Staging:
        """Local files to write `finals` (name -> key) into, published together by `Staging.publish`."""

    @abstractmethod
    def publish_folder(self, local: Path, key: str, last: str) -> None:
        """Publish a finished local folder whole, its file `last` last. The local folder is consumed once
        published; if publishing fails it stays as it was, to be published again."""

    def write_folder(self, key: str, files: Mapping[str, bytes], stale_after_s: float) -> None:
        """Publish small files (name -> bytes) as a new folder, whole: the last one given appears last."""
        spool = Path(tempfile.mkdtemp(prefix="video-assets-spool-"))
        try:
            for name, data in files.items():
                (spool / name).write_bytes(data)
            self.publish_folder(spool, key, last=list(files)[-1] if files else "")
        finally:
            shutil.rmtree(spool, ignore_errors=True)

    def remove_other_versions(self, folder: str, prefix: str, keep: str) -> None:
        """Published entries of `folder` named `<prefix>...`, other than `keep`: versions a newer one replaced."""
        for name in self.names(folder):
            if name.startswith(prefix) and name != keep and not name.startswith("."):
                self.remove(f"{folder}/{name}")

    def put_bytes(self, key: str, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(delete=False) as handle:
            handle.write(data)
        self.put_file(Path(handle.name), key)

    def read_json(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.read_bytes(key))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def write_json(self, key: str, data: Mapping[str, Any]) -> None:
        self.put_bytes(key, json.dumps(data, indent=1, sort_keys=True, default=str).encode())

    def read_table(self, key: str, columns: list[str] | None = None, schema: Any = None) -> Any:
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory() as folder:
            return pq.read_table(self.fetch(key, Path(folder)), columns=columns, schema=schema)


class LocalStore(Store):
    """A folder of this machine: publishing is a rename."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def uri(self, key: str = "") -> str:
        return str(self.path(key))

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def names(self, key: str = "") -> list[str]:
        folder = self.path(key)
        return sorted(entry.name for entry in os.scandir(folder)) if folder.is_dir() else []

    def files(self, key: str = "") -> dict[str, StoredFile]:
        top = self.path(key)
        found = {}
        for folder, _, names in os.walk(top):
            for name in names:
                path = Path(folder) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed while listed
                    continue
                found[path.relative_to(top).as_posix()] = StoredFile(stat.st_size, stat.st_mtime)
        return found

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def put_file(self, local: Path, key: str) -> None:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path(final, new_token())
        shutil.move(local, temp)  # a rename when both are on one filesystem
        os.replace(temp, final)

    def copy_in(self, local: Path, key: str) -> None:
        copy_file(local, self.path(key))

    def remove(self, key: str) -> None:
        """A folder is renamed to a hidden name first: no reader sees part of it."""
        path = self.path(key)
        if path.is_dir():
            hidden = temp_path(path, "deleting")
            os.rename(path, hidden)
            shutil.rmtree(hidden, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def fetch(self, key: str, cache: Path) -> Path:
        return self.path(key)

    def register(self, conn: Any) -> None:
        return None

    def staging(self, finals: Mapping[str, str], stale_after_s: float) -> Staging:
        return Staging({name: self.path(key) for name, key in finals.items()}, stale_after_s)

    def publish_folder(self, local: Path, key: str, last: str) -> None:
        self.path(key).parent.mkdir(parents=True, exist_ok=True)
        publish_folder(local, self.path(key))

    def write_folder(self, key: str, files: Mapping[str, bytes], stale_after_s: float) -> None:
        """Built beside its final name (same filesystem), so it appears by one rename."""
        write_folder(self.path(key), files, stale_after_s)

    def remove_other_versions(self, folder: str, prefix: str, keep: str) -> None:
        remove_other_versions(self.path(folder), prefix, keep=self.path(f"{folder}/{keep}"))

    def write_json(self, key: str, data: Mapping[str, Any]) -> None:
        """Written beside its final name and renamed: no copy through a spool file (status files, each second)."""
        write_json(self.path(key), data)


class ObjectStore(Store):
    """A prefix of an S3-compatible bucket (`s3://bucket/prefix`); credentials from the standard AWS variables."""

    def __init__(self, url: str, endpoint: str | None = None, region: str = "us-east-1"):
        self.prefix = url.removeprefix("s3://").strip("/")
        self.fs = _s3_filesystem(endpoint, region)

    def _path(self, key: str) -> str:
        return f"{self.prefix}/{key}".rstrip("/") if key else self.prefix

    def uri(self, key: str = "") -> str:
        return f"s3://{self._path(key)}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def names(self, key: str = "") -> list[str]:
        try:
            entries = self.fs.ls(self._path(key), detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)

    def files(self, key: str = "") -> dict[str, StoredFile]:
        top = self._path(key)
        listing = self.fs.find(top, detail=True)  # one paginated listing of every key under the prefix
        return {
            path.removeprefix(top).lstrip("/"): StoredFile(int(info["size"]), info["LastModified"].timestamp())
            for path, info in listing.items()
            if info["type"] == "file"
        }

    def read_bytes(self, key: str) -> bytes:
        return bytes(self.fs.cat_file(self._path(key)))

    def put_file(self, local: Path, key: str) -> None:
        try:
            self.copy_in(local, key)
        finally:
            local.unlink(missing_ok=True)

    def copy_in(self, local: Path, key: str) -> None:
        self.fs.put_file(str(local), self._path(key))  # one PUT, or a multipart upload aborted on failure

    def remove(self, key: str) -> None:
        path = self._path(key)
        folders = [
            p for p, info in self.fs.find(path, withdirs=True, detail=True).items() if info["type"] == "directory"
        ]
        try:
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass
        # Stores with real folders (SeaweedFS) keep them, empty, after their objects are gone: remove those too
        # (deepest first; on AWS these keys do not exist and deleting them does nothing).
        bucket = path.split("/", 1)[0]
        for folder in sorted({*folders, path}, key=len, reverse=True):
            self.fs.call_s3("delete_object", Bucket=bucket, Key=f"{folder.split('/', 1)[1]}/")

    def fetch(self, key: str, cache: Path) -> Path:
        local = cache / key
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = temp_path(local, new_token())
        self.fs.get_file(self._path(key), str(partial))
        os.replace(partial, local)
        return local

    def register(self, conn: Any) -> None:
        """DuckDB refuses a second filesystem for the same protocol: the first one registered serves it."""
        if not any(name in conn.list_filesystems() for name in _protocols(self.fs)):
            conn.register_filesystem(self.fs)

    def staging(self, finals: Mapping[str, str], stale_after_s: float) -> Staging:
        spool = Path(tempfile.mkdtemp(prefix="video-assets-spool-"))
        return _UploadStaging(self, spool, finals)

    def publish_folder(self, local: Path, key: str, last: str) -> None:
        files = sorted(p for p in local.rglob("*") if p.is_file())
        for file in sorted(files, key=lambda p: p.name == last):  # `last` after every other file
            self.copy_in(file, f"{key}/{file.relative_to(local).as_posix()}")
        shutil.rmtree(local, ignore_errors=True)  # only once every file is in the store


class _UploadStaging(Staging):
    """Local spool files, uploaded in order by publish()."""

    def __init__(self, store: ObjectStore, spool: Path, finals: Mapping[str, str]):
        self.store, self.spool, self.keys = store, spool, dict(finals)
        self.token = new_token()
        self.temps = {name: spool / f"{name}.{self.token}{TEMP_SUFFIX}" for name in finals}

    def publish(self) -> dict[str, str]:
        for name, temp in self.temps.items():
            self.store.put_file(temp, self.keys[name])
        shutil.rmtree(self.spool, ignore_errors=True)
        return {name: self.store.uri(key) for name, key in self.keys.items()}

    def discard(self) -> None:
        shutil.rmtree(self.spool, ignore_errors=True)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


_S3_FILESYSTEMS: dict[tuple[str | None, str, int], Any] = {}


def _s3_filesystem(endpoint: str | None, region: str) -> Any:
    """One S3 client per process and endpoint: making one takes about a quarter of a second, and a run asks
    for several stores. A forked process makes its own (an S3 client's event loop does not survive a fork)."""
    key = (endpoint, region, os.getpid())
    if key not in _S3_FILESYSTEMS:
        import s3fs

        client = {"region_name": region, **({"endpoint_url": endpoint} if endpoint else {})}
        # Other machines write here too: never answer from a cached listing.
        _S3_FILESYSTEMS[key] = s3fs.S3FileSystem(
            client_kwargs=client, use_listings_cache=False, skip_instance_cache=True
        )
    return _S3_FILESYSTEMS[key]


def store_at(url: str, endpoint: str | None = None, region: str = "us-east-1") -> Store:
    """The store for `url`: s3://bucket/prefix, or a local folder."""
    if url.startswith("s3://"):
        return ObjectStore(url, endpoint, region)
    return LocalStore(Path(url))
