"""Probe a video file: its size, hash, timing and picture format, or a clear reason it is unusable."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import MetadataValue

from video_assets.failures import VideoError


class UnreadableVideoError(VideoError):
    """The file cannot be used as a video. The message names the file and what to do about it."""

    permanent_by_default = True

    def __init__(self, path: Path | str, problem: str, remedy: str):
        super().__init__(f"{path} {problem}. {remedy}")


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    fps: float
    frame_count: int
    width: int  # of the picture as displayed, which is what the model sees (decoders apply the rotation)
    height: int
    codec: str
    recorded_at: datetime  # UTC start of the recording; frame_ts = recorded_at + time offset
    rotation: int = 0  # degrees counterclockwise the stored picture is turned for display (phone clips: 90, 270)

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class VideoProbe:
    """Everything downstream assets need to know about one video partition."""

    video_id: str
    source: str
    relative_path: str
    path: str
    bytes: int
    sha256: str
    media: MediaInfo

    def as_metadata(self) -> dict[str, Any]:
        """What raw_video shows. The video's location is `video_path`: the IO manager writes its own
        pickle's location under `path`, which would hide ours."""
        media = asdict(self.media)
        media["recorded_at"] = self.media.recorded_at.isoformat()
        return {
            "source": self.source,
            "file": self.relative_path,
            "video_path": MetadataValue.path(self.path),
            "bytes": self.bytes,
            "sha256": self.sha256,
            **media,
            "resolution": self.media.resolution,
        }


def probe_media(path: Path) -> MediaInfo:
    """Read the container header and decode one frame, so a corrupt file fails here, not mid-run."""
    size = path.stat().st_size
    if size == 0:
        raise UnreadableVideoError(
            path, "is empty (0 bytes)", "Copy the video again, or delete the file from the drop folder."
        )
    import av  # decoding libraries load only when a run needs them

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnreadableVideoError(
                    path, "has no video stream", "Drop a video file (MP4/H.264 works everywhere)."
                )
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            duration_s = _duration_s(container, stream)
            frame_count = stream.frames or round(duration_s * fps)
            first = next(container.decode(stream))
            rotation = round(first.rotation) % 360
            coded = (stream.codec_context.width, stream.codec_context.height)
            width, height = (coded[1], coded[0]) if rotation in (90, 270) else coded
            info = MediaInfo(
                duration_s=round(duration_s, 6),
                fps=round(fps, 6),
                frame_count=int(frame_count),
                width=width,
                height=height,
                codec=stream.codec_context.name,
                recorded_at=_recording_start(container.metadata, path, duration_s),
                rotation=rotation,
            )
    except (av.error.FFmpegError, StopIteration, UnicodeDecodeError) as exc:
        raise UnreadableVideoError(
            path,
            f"cannot be decoded as video ({type(exc).__name__}: {exc})",
            "Re-export it (for example `ffmpeg -i in -c:v libx264 out.mp4`) or remove it from the drop folder.",
        ) from exc
    if fps <= 0 or info.frame_count <= 0:
        raise UnreadableVideoError(
            path, "declares no frame rate or no frames", "Re-export it with a constant frame rate."
        )
    return info


def _duration_s(container: Any, stream: Any) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _recording_start(tags: dict[str, str], path: Path, duration_s: float) -> datetime:
    """The container's creation_time if it has one, else the file's mtime minus its duration."""
    created = tags.get("creation_time")
    if created:
        try:
            parsed = datetime.fromisoformat(created.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    finished = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return finished - timedelta(seconds=duration_s)
