"""The storage layer on a local folder and on a real S3 server (SeaweedFS): the same behaviour, and
nothing half-written ever visible."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from video_assets.storage import LocalStore, ObjectStore, Store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "data")
    server = request.getfixturevalue("object_store_server")
    request.getfixturevalue("s3_credentials")
    from servers.cluster_services import BUCKET

    return ObjectStore(f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}", endpoint=server.endpoint)


def test_staged_tables_appear_together_only_when_published(store: Store) -> None:
    keys = {t: f"predictions/{t}/video_id=v1/part-0.parquet" for t in ("detections", "videos")}
    staging = store.staging(keys, stale_after_s=3600)
    for name, temp in staging.temps.items():
        pq.write_table(pa.table({"video_id": ["v1"], "table": [name]}), temp)
    assert not any(store.exists(key) for key in keys.values())  # written, not yet visible
    files = staging.publish()
    assert set(files) == {"detections", "videos"} and all(store.exists(key) for key in keys.values())
    assert store.names("predictions") == ["detections", "videos"]
    assert store.read_table(keys["videos"]).to_pylist() == [{"video_id": "v1", "table": "videos"}]

    conn = duckdb.connect()
    store.register(conn)
    glob = store.uri("predictions/detections/video_id=*/*.parquet")
    assert conn.execute(f"select count(*) from read_parquet('{glob}')").fetchone() == (1,)


def test_a_discarded_staging_leaves_nothing(store: Store) -> None:
    staging = store.staging({"frames": "predictions/frames/video_id=v2/part-0.parquet"}, stale_after_s=3600)
    pq.write_table(pa.table({"a": [1]}), staging.temps["frames"])
    staging.discard()
    assert not store.exists("predictions/frames/video_id=v2/part-0.parquet")
    assert store.names("predictions/frames") in ([], ["video_id=v2"])  # an empty local folder at most


def test_small_files_folders_and_removal(store: Store, tmp_path: Path) -> None:
    store.write_json("streams/gate/status.json", {"state": "streaming"})
    assert store.read_json("streams/gate/status.json") == {"state": "streaming"}
    assert store.read_json("streams/gate/missing.json") is None
    segment = tmp_path / "segment"
    segment.mkdir()
    for name in ("detections.parquet", "camera_segments.parquet"):
        (segment / name).write_bytes(name.encode())
    store.publish_folder(segment, "streams/gate/2026-11-30T04/seg-1", last="camera_segments.parquet")
    assert store.names("streams/gate/2026-11-30T04/seg-1") == ["camera_segments.parquet", "detections.parquet"]
    local = store.fetch("streams/gate/2026-11-30T04/seg-1/detections.parquet", tmp_path / "cache")
    assert local.read_bytes() == b"detections.parquet"
    store.remove("streams/gate/2026-11-30T04")
    assert store.names("streams/gate") == ["status.json"]


def test_the_object_store_stopped_mid_upload_leaves_no_object(object_store_server, s3_credentials, tmp_path: Path) -> None:
    import threading
    import time

    from servers.cluster_services import BUCKET

    store = ObjectStore(f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}", endpoint=object_store_server.endpoint)
    big = tmp_path / "big.mp4"
    with open(big, "wb") as handle:
        handle.truncate(400 * 2**20)  # a multipart upload of many parts
    failures: list[BaseException] = []

    def upload() -> None:
        try:
            store.copy_in(big, "videos/big.mp4")
        except BaseException as exc:  # what the sensor's tick would see
            failures.append(exc)

    uploading = threading.Thread(target=upload)
    uploading.start()
    time.sleep(0.5)
    object_store_server.stop()  # mid-upload
    uploading.join(timeout=300)
    object_store_server.start()
    assert not uploading.is_alive()
    print(f"upload {'failed: ' + repr(failures[0])[:200] if failures else 'finished before the stop'}")
    if failures:
        assert not store.exists("videos/big.mp4")  # nothing half-written is visible
    else:  # it finished before the stop: then it is whole
        assert store.fs.info(store.uri("videos/big.mp4"))["size"] == big.stat().st_size
    store.copy_in(big, "videos/big.mp4")  # the next attempt (the next sensor tick) publishes it whole
    assert store.fs.info(store.uri("videos/big.mp4"))["size"] == big.stat().st_size
