"""SQL models built from Parquet in a real S3 server (SeaweedFS), as on many machines, equal the same models
built from a local folder holding the same Parquet, row for row; incremental builds against the store
still equal a full rebuild; and `video-assets sql` reads the views over the store."""

from __future__ import annotations

import io
import json
import random
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from video_assets.cli.query import run_query
from video_assets.predictions.store import PredictionStore
from video_assets.settings import ClusterSettings, PostgresSettings, RedisSettings, Settings, StoreSettings
from video_assets.sql.assets import build_sql_assets
from video_assets.sql.defs import sql_variables
from video_assets.sql.models import load_models
from video_assets.sql.warehouse import Warehouse
from video_assets.storage import ObjectStore


def cluster_settings(home: Path, url: str, endpoint: str) -> Settings:
    """Many machines, as far as the SQL models and `video-assets sql` go: the store is the object store (the
    Postgres and Redis named here are never reached)."""
    cluster = ClusterSettings(
        path=home / "cluster.toml",
        postgres=PostgresSettings(host="127.0.0.1"),
        redis=RedisSettings(url="redis://127.0.0.1:1/0"),
        store=StoreSettings(url=url, endpoint=endpoint),
    )
    return Settings(home=home, cluster=cluster)


class Mirror:
    """Makes an object store prefix hold what a local predictions folder holds: changed files uploaded whole,
    deleted videos' folders removed."""

    def __init__(self, local: Path, store: ObjectStore):
        self.local, self.store = local, store
        self.uploaded: dict[str, int] = {}

    def sync(self) -> None:
        now = {
            p.relative_to(self.local).as_posix(): p.stat().st_mtime_ns
            for p in self.local.rglob("*.parquet")
            if not p.name.startswith(".")
        }
        for key, mtime in sorted(now.items()):
            if self.uploaded.get(key) != mtime:
                self.store.put_bytes(key, (self.local / key).read_bytes())
        for key in sorted(set(self.uploaded) - set(now)):
            self.store.remove(key.rsplit("/", 1)[0])
        self.uploaded = now


@pytest.fixture
def stores(tmp_path, object_store_server, s3_credentials, parquet_videos):
    """The same Parquet in a local folder and in the object store, and a warehouse for each."""
    from servers.cluster_services import BUCKET

    local = Settings(home=tmp_path / "local")
    remote = cluster_settings(tmp_path / "remote", f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}", object_store_server.endpoint)
    s3_store = PredictionStore.from_settings(remote)
    assert s3_store.root.startswith("s3://") and s3_store.endpoint == object_store_server.endpoint
    data = s3_store.data()
    assert isinstance(data, ObjectStore)
    videos = parquet_videos(local.predictions_dir, random.Random(31))
    return {
        "local": (PredictionStore.from_settings(local), warehouse_of(local)),
        "s3": (s3_store, warehouse_of(remote)),
        "videos": videos,
        "mirror": Mirror(local.predictions_dir, data),
        "remote_settings": remote,
    }


def warehouse_of(settings: Settings) -> Warehouse:
    """On many machines, the published warehouse is in the object store too."""
    return Warehouse.from_settings(settings)


def test_models_built_from_the_object_store_equal_those_built_locally(
    stores, build_all, rows, same_rows, full_rebuild
) -> None:
    videos, mirror = stores["videos"], stores["mirror"]
    models = load_models(stores["remote_settings"].sql_dir, sql_variables())
    incremental = [m for m in models if m.materialized == "incremental"]
    assert incremental and {m.materialized for m in models} >= {"view", "incremental"}
    for n in range(4):
        videos.file_video(f"file{n:03d}.mp4-{n:012x}")
        videos.files.append(f"file{n:03d}.mp4-{n:012x}")
    for camera, hours in (("gate", range(4)), ("lobby", (1, 2))):
        for hour in hours:
            videos.camera_hour(camera, hour, videos.rng.randrange(5, 25))
    mirror.sync()

    def build_both(expected: str) -> dict[str, dict[str, dict]]:
        metadata = {}
        for name in ("local", "s3"):
            store, warehouse = stores[name]
            started = time.perf_counter()
            metadata[name] = build_all(warehouse, store, models)
            print(f"{expected} build of {len(models)} models from {name}: {time.perf_counter() - started:.2f} s")
            assert {m["build"] for m in metadata[name].values() if "build" in m} == {expected}, name
        return metadata

    def assert_same_tables() -> None:
        s3_store, s3_warehouse = stores["s3"]
        local_store, local_warehouse = stores["local"]
        filled = set()
        with s3_warehouse.read(s3_store) as remote, local_warehouse.read(local_store) as local:
            for model in models:
                got = rows(remote, f'SELECT * FROM "{model.name}"')
                filled |= {model.name} if got else set()
                assert same_rows(got, rows(local, f'SELECT * FROM "{model.name}"')), model.name
            # the data exercises the models of videos, camera hours and time buckets (not tracks: no previews here)
            assert filled >= {"video_summary", "camera_health", "line_crossings_per_hour", "activity_per_source_hour"}
            for model in incremental:
                assert same_rows(rows(remote, f'SELECT * FROM "{model.name}"'), full_rebuild(s3_store, model)), model.name

    build_both("full refresh: first build")
    assert_same_tables()

    videos.file_video("added.mp4-0000000000aa")  # a new video
    videos.file_video(videos.files[1])  # a re-run: its files replaced
    videos.delete(videos.files.pop(2))  # a deleted video: its folders gone
    videos.camera_hour("gate", 2, 30)  # a camera hour republished, longer
    mirror.sync()
    after = build_both("incremental")
    for name in ("local", "s3"):
        assert after[name]["video_summary"]["videos_changed"] == 4, name
        assert after[name]["video_summary"]["videos_read"] == 3, name  # the deleted one is not read
    assert_same_tables()

    quiet = build_all(stores["s3"][1], stores["s3"][0], models)  # nothing changed in the store: nothing to do
    assert {m["videos_changed"] for m in quiet.values() if "videos_changed" in m} == {0}


def test_video_assets_sql_reads_the_views_over_the_object_store(stores) -> None:
    """The SQL assets, as a run builds them, then `video-assets sql` on the published warehouse."""
    videos, mirror = stores["videos"], stores["mirror"]
    for n in range(3):
        videos.file_video(f"file{n:03d}.mp4-{n:012x}")
    mirror.sync()
    settings = stores["remote_settings"]
    s3_store, warehouse = stores["s3"]
    result = dg.materialize(
        build_sql_assets(settings.sql_dir, {}, sql_variables()), resources={"warehouse": warehouse, "store": s3_store}
    )
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    local_store, _ = stores["local"]
    expected = sum(len(local_store.read_table("detections", f"file{n:03d}.mp4-{n:012x}")) for n in range(3))

    out = io.StringIO()
    sql = "select count(*) as n, count(distinct video_id) as videos from detections"
    assert run_query(settings, sql, output="json", out=out) == 0
    assert json.loads(out.getvalue()) == [{"n": expected, "videos": 3}]
    out = io.StringIO()
    assert run_query(settings, "select count(*) as n from frames f join videos v using (video_id)", "json", out) == 0
    assert json.loads(out.getvalue())[0]["n"] > 0
