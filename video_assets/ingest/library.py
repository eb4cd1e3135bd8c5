"""The VideoLibrary resource: which folders are watched, and which file a partition key stands for."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from video_assets.failures import VideoError
from video_assets.ingest.files import PROCESSED_DIR, ContentHashes, DroppedFile, scan_drop_folders, scan_processed
from video_assets.ingest.keys import hash_of_key, name_of_key, readable_name, video_key
from video_assets.ingest.probe import VideoProbe, probe_media
from video_assets.settings import DropFolder, Settings


class VideoNotFoundError(VideoError):
    """No file in the drop folders has the content a partition key names."""

    permanent_by_default = True


class VideoLibrary(dg.ConfigurableResource):
    """Drop folders (source name -> path) and the content-hash cache under VIDEO_ASSETS_HOME."""

    drop_folders: dict[str, str]
    state_dir: str
    processed_sources: str = "keep"  # what retention does to processed videos (VIDEO_ASSETS_PROCESSED_SOURCES)

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoLibrary:
        return cls(
            drop_folders={f.source: str(f.path) for f in settings.drop_folders},
            state_dir=str(settings.state_dir),
            processed_sources=settings.retention.source_action,
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
