"""Previews on many machines: predictions, the tracks table, snapshots and pictures in a real S3 server
(SeaweedFS), and the media server answering the browser from it.

A sample video runs through process_video with the cluster's store configured (no local predictions or
previews folder may appear), then the media server, holding only the store's address, serves the
contact sheet and a snapshot over HTTP.
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dagster as dg
import pytest
import requests
from servers.cluster_services import ACCESS_KEY, BUCKET, SECRET_KEY

from video_assets.definitions import build_definitions
from video_assets.ingest.library import VideoLibrary
from video_assets.previews.assets import VIDEO_PREVIEW
from video_assets.previews.server import MediaCache, serve
from video_assets.previews.store import MediaFolder, PreviewStore, media_folders
from video_assets.settings import ClusterSettings, PostgresSettings, RedisSettings, Settings, StoreSettings
from video_assets.storage import LocalStore, ObjectStore, table_key

JPEG = b"\xff\xd8\xff"


@pytest.fixture
def cluster_settings(settings: Settings, tmp_path: Path, object_store_server, s3_credentials) -> Settings:
    """One machine's folders, but the cluster's store for shared data (Postgres and Redis are not used here)."""
    store = StoreSettings(url=f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}", endpoint=object_store_server.endpoint)
    cluster = ClusterSettings(
        path=tmp_path / "cluster.toml",
        postgres=PostgresSettings(host="127.0.0.1"),
        redis=RedisSettings(url="redis://127.0.0.1:1/0"),
        store=store,
    )
    return dataclasses.replace(settings, cluster=cluster)


@pytest.fixture
def media(cluster_settings: Settings, tmp_path: Path) -> Iterator[str]:
    server = serve("127.0.0.1", 0, media_folders(PreviewStore.from_settings(cluster_settings)), tmp_path / "cache")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = result.asset_materializations_for_node("video_preview")
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _path(markdown: str, base: str) -> str:
    """The path of the first image URL in Markdown metadata (the media server's address is `base`)."""
    url = re.search(r"\]\(([^)]+)\)", markdown)
    assert url is not None and url.group(1).startswith(base + "/"), markdown
    return url.group(1).removeprefix(base)


def _raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET the path exactly as written (requests would resolve `..` before sending it)."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    connection = http.client.HTTPConnection(host or "", port, timeout=30)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_a_video_previewed_from_the_object_store_lands_there_and_is_served_from_it(
    cluster_settings: Settings, instance: dg.DagsterInstance, samples_dir: Path, media: str, tmp_path: Path
) -> None:
    settings = cluster_settings
    shutil.copy2(samples_dir / "two_walkers.mp4", settings.inbox / "two_walkers.mp4")
    library = VideoLibrary.from_settings(settings)
    [dropped] = library.scan()
    key = library.key_for(dropped)
    assert library.upload(dropped, key)  # as the control plane's sensor does before asking for the run
    instance.add_dynamic_partitions("videos", [key])
    job = build_definitions(settings).resolve_job_def("process_video")
    result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
    assert result.success

    assert settings.cluster is not None
    root = settings.cluster.store.url
    store = ObjectStore(root, endpoint=settings.cluster.store.endpoint)
    tracks = store.read_table(f"predictions/{table_key('tracks', key)}").to_pylist()
    assert len(tracks) == 2
    for track in tracks:  # each snapshot is an object beside the tracks table
        assert track["snapshot"].startswith(f"{root}/predictions/tracks/video_id={key}/snapshots-")
        assert store.read_bytes(track["snapshot"].removeprefix(root + "/")).startswith(JPEG)
    meta = _metadata(result)
    sheet = meta["contact_sheet_file"]
    assert sheet.startswith(f"{root}/previews/{key}/") and sheet.endswith("/contact_sheet.jpg")
    assert meta["tracks_file"] == f"{root}/predictions/{table_key('tracks', key)}"
    sheet_bytes = store.read_bytes(sheet.removeprefix(root + "/"))
    assert sheet_bytes.startswith(JPEG) and store.exists(sheet.removeprefix(root + "/").replace("contact_sheet.jpg", "activity.png"))
    # Nothing shared was written to this machine's disk.
    assert not (settings.home / "predictions").exists() and not (settings.home / "previews").exists()

    # The UI's Markdown points at the media server as on one machine; it answers from the store.
    sheet_path = _path(meta["contact_sheet"], settings.media_base_url)
    assert sheet_path == f"/previews/{key}/{sheet.split('/')[-2]}/contact_sheet.jpg"
    answer = requests.get(media + sheet_path, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
    assert answer.content == sheet_bytes and answer.content.startswith(JPEG)
    assert (tmp_path / "cache" / "previews" / sheet_path.removeprefix("/previews/")).read_bytes() == sheet_bytes
    snapshot_path = _path(meta["top_tracks"], settings.media_base_url)
    assert unquote(snapshot_path).startswith(f"/tracks/video_id={key}/snapshots-")
    snapshot = requests.get(media + snapshot_path, timeout=30)
    assert snapshot.status_code == 200 and snapshot.content.startswith(JPEG)
    snapshot_file = "/".join(unquote(snapshot_path).split("/")[-2:])  # snapshots-<token>/<tracker>.jpg
    for path in (
        f"/tracks/video_id={key}/part-0.parquet",  # not a picture
        f"/previews/{key}/",  # no listings
        f"/previews/{key}/missing/contact_sheet.jpg",  # not in the store
        f"/previews/../predictions/tracks/video_id={key}/{snapshot_file}",
        f"/previews/%2e%2e/predictions/tracks/video_id={key}/{snapshot_file}",
        f"/predictions/tracks/video_id={key}/{snapshot_file}",  # not a served prefix
        "/videos/x.jpg",
    ):
        status, body = _raw_get(media, path)
        assert status == 404, path
        assert ACCESS_KEY.encode() not in body and SECRET_KEY.encode() not in body

    # Again: the new version replaces the old one in the store, too.
    again = job.execute_in_process(partition_key=key, instance=instance, asset_selection=[VIDEO_PREVIEW])
    newer = _metadata(again)["contact_sheet_file"]
    assert newer != sheet and store.names(f"previews/{key}") == [newer.split("/")[-2]]
    assert [n for n in store.names(f"predictions/tracks/video_id={key}") if n.startswith("snapshots-")] == [
        store.read_table(f"predictions/{table_key('tracks', key)}").to_pylist()[0]["snapshot"].split("/")[-2]
    ]


def test_the_media_cache_keeps_the_recently_served_pictures_within_its_size(tmp_path: Path) -> None:
    class Fetching(LocalStore):
        """A store whose fetch copies, like an object store's."""

        def fetch(self, key: str, cache: Path) -> Path:
            (cache / key).parent.mkdir(parents=True, exist_ok=True)
            return Path(shutil.copyfile(self.path(key), cache / key))

    store = Fetching(tmp_path / "store")
    for n in range(4):
        store.put_bytes(f"v/{n}.jpg", bytes([n]) * 1000)
    cache = MediaCache(tmp_path / "cache", max_bytes=2800)  # trimmed to 2100
    folder = MediaFolder(store)
    for n in (0, 1, 0, 2):  # 0 served again: more recent than 1
        assert cache.read("previews", folder, f"v/{n}.jpg") == bytes([n]) * 1000
        time.sleep(0.02)  # file times are coarse: keep the order visible
    assert sorted(p.name for p in (tmp_path / "cache" / "previews" / "v").iterdir()) == ["0.jpg", "2.jpg"]
    assert cache.size == 2000
    with pytest.raises(FileNotFoundError):
        cache.read("previews", folder, "v/9.jpg")
