"""The VideoLibrary resource: which folders are watched, and which file a partition key stands for."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from video_assets.failures import VideoError
from video_assets.ingest.files import PROCESSED_DIR, ContentHashes, DroppedFile, scan_drop_folders, scan_processed
from video_assets.ingest.keys import hash_of_key, name_of_key, readable_name, video_key
from video_assets.ingest.probe import VideoProbe, probe_media
from video_assets.settings import DropFolder, Settings
from video_assets.storage import store_at


class VideoNotFoundError(VideoError):
    """No file in the drop folders has the content a partition key names."""

    permanent_by_default = True


class VideoLibrary(dg.ConfigurableResource):
    """Drop folders (source name -> path) and the content-hash cache under VIDEO_ASSETS_HOME.

    On many machines (`store_url` set) the drop folders are the control plane's: its sensor uploads
    each settled video once to `videos/<key>` in the object store, with a `<key>.json` card (source,
    path, size, mtime) written after it, and a run on any machine fetches it into a local cache.
    """

    drop_folders: dict[str, str]
    state_dir: str
    processed_sources: str = "keep"  # what retention does to processed videos (VIDEO_ASSETS_PROCESSED_SOURCES)
    store_url: str | None = None  # s3://bucket/prefix/videos on many machines
    store_endpoint: str | None = None
    store_region: str = "us-east-1"

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoLibrary:
        url, endpoint, region = settings.shared("videos")
        return cls(
            drop_folders={f.source: str(f.path) for f in settings.drop_folders},
            state_dir=str(settings.state_dir),
            processed_sources=settings.retention.source_action,
            store_url=url if settings.cluster else None,  # one machine: the drop folders are here
            store_endpoint=endpoint,
            store_region=region,
        )

    def upload(self, dropped: DroppedFile, video_id: str) -> bool:
        """Put a settled video into the object store once (content-addressed by its key); False when
        there is no object store or it is there already."""
        if self.store_url is None:
            return False
        store = store_at(self.store_url, self.store_endpoint, self.store_region)
        if store.exists(_card(video_id)):
            return False
        store.copy_in(dropped.path, video_id)
        card = {"source": dropped.source, "relative_path": dropped.relative_path, "size": dropped.size,
                "mtime_ns": dropped.mtime_ns}  # fmt: skip
        store.write_json(_card(video_id), card)  # last: its presence says the video is there whole
        return True

    def _fetch(self, video_id: str) -> DroppedFile:
        """The video from the object store, in this machine's cache (kept while its size matches)."""
        assert self.store_url is not None
        store = store_at(self.store_url, self.store_endpoint, self.store_region)
        card = store.read_json(_card(video_id))
        if card is None:
            raise VideoNotFoundError(
                f"Video {video_id!r} is not in the object store ({store.uri(video_id)}): the control plane's "
                "drop-folder sensor uploads each video before its run. Drop the file again on the control plane."
            )
        cache = Path(self.state_dir) / "cache" / "videos"
        local = cache / video_id
        if not (local.exists() and local.stat().st_size == card["size"]):
            store.fetch(video_id, cache)
        os.utime(local, ns=(card["mtime_ns"], card["mtime_ns"]))  # the recording's time derives from it
        stat = local.stat()
        return DroppedFile(
            card["source"], card["relative_path"], local, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns
        )

    def folders(self) -> list[DropFolder]:
        return [DropFolder(source, Path(path)) for source, path in self.drop_folders.items()]

    def scan(self) -> list[DroppedFile]:
        return scan_drop_folders(self.folders())

    def hashes(self) -> ContentHashes:
        return ContentHashes(Path(self.state_dir) / "content_hashes.sqlite")

    def key_for(self, dropped: DroppedFile) -> str:
        return video_key(dropped.relative_path, self.hashes().sha256(dropped))

    def locate(self, video_id: str) -> DroppedFile:
        """Find the file whose name and content match the key (content may sit in any drop folder, or in
        a drop folder's processed/ folder, where retention moves videos it has processed)."""
        name, content_hash = name_of_key(video_id), hash_of_key(video_id)
        if name is None or content_hash is None:
            raise VideoNotFoundError(
                f"Partition key {video_id!r} was not made by video-assets (expected <name>-<12 hex digits>). "
                "Delete the partition, then drop the file into a drop folder to register it."
            )
        if self.store_url is not None:
            return self._fetch(video_id)
        listed = [*self.scan(), *scan_processed(self.folders())]
        candidates = [f for f in listed if f.is_video and readable_name(f.relative_path) == name]
        for candidate in candidates:
            if self.hashes().sha256(candidate).startswith(content_hash):
                return candidate
        folders = ", ".join(str(f.path) for f in self.folders())
        changed = f" ({', '.join(c.relative_path for c in candidates)} now has other content)" if candidates else ""
        deleted = (
            " Retention deletes videos once they are processed (VIDEO_ASSETS_PROCESSED_SOURCES=delete): their "
            "predictions stay; to process one again, put the file back where it was."
            if self.processed_sources == "delete"
            else ""
        )
        raise VideoNotFoundError(
            f"No file in the drop folders ({folders}, or their {PROCESSED_DIR}/ folders) matches video "
            f"{video_id!r}{changed}. It was moved, renamed or changed after it was picked up: put the original "
            f"back, or leave the new file where it is and it will be processed as a new video.{deleted}"
        )

    def probe(self, video_id: str) -> VideoProbe:
        dropped = self.locate(video_id)
        return VideoProbe(
            video_id=video_id,
            source=dropped.source,
            relative_path=dropped.relative_path,
            path=str(dropped.path),
            bytes=dropped.size,
            sha256=self.hashes().sha256(dropped),
            media=probe_media(dropped.path),
        )


def _card(video_id: str) -> str:
    return f"{video_id}.json"
