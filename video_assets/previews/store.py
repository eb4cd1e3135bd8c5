"""The PreviewStore resource: where previews and track snapshots live, and the web address they are seen at.

The Dagster UI has no image metadata type; it renders Markdown metadata, images included, in place on
the partition's page, but only Markdown under 1000 characters: longer Markdown (an inlined `data:` URI
of any picture worth seeing is tens of kilobytes) hides behind a "[Show Markdown]" button, and would
bloat the event log with every materialization. So pictures are served by a small read-only web server
(`video-assets dev` runs it: previews/server.py) and the metadata holds short Markdown pointing at it.

Both roots are local folders on one machine and prefixes of the cluster's object store on many
(`Settings.shared`); the URLs are the same either way, the media server fetching from where they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import dagster as dg

from video_assets.settings import Settings
from video_assets.storage import Store, store_at

# The media server's URL prefixes and the folders behind them (relative to the store's roots).
PREVIEWS_PREFIX = "previews"
TRACKS_PREFIX = "tracks"
MARKDOWN_INLINE_LIMIT = 1000  # the UI renders shorter Markdown in place, longer behind a button


class PreviewStore(dg.ConfigurableResource):
    """Predictions are read from, and the tracks table and snapshots written to, `predictions_root`;
    contact sheets and charts go to `previews_root`. Each is a local folder or s3://bucket/prefix/...
    (object-store credentials from the AWS variables, never in the config)."""

    predictions_root: str  # the tracks table and its snapshots live under <predictions_root>/tracks
    previews_root: str  # contact sheets and charts
    media_url: str  # where browsers reach the media server, e.g. http://127.0.0.1:3010
    endpoint: str | None = None  # an S3-compatible store that is not AWS
    region: str = "us-east-1"

    @classmethod
    def from_settings(cls, settings: Settings) -> PreviewStore:
        predictions, endpoint, region = settings.shared("predictions")
        previews, _, _ = settings.shared("previews")  # the same store as the predictions: one endpoint
        return cls(
            predictions_root=predictions,
            previews_root=previews,
            media_url=settings.media_base_url,
            endpoint=endpoint,
            region=region,
        )

    def predictions(self) -> Store:
        return store_at(self.predictions_root, self.endpoint, self.region)

    def previews(self) -> Store:
        return store_at(self.previews_root, self.endpoint, self.region)

    def url(self, location: Path | str) -> str:
        """The address the media server serves a preview file or a snapshot at (given where it was published)."""
        for prefix, root in ((PREVIEWS_PREFIX, self.previews_root), (TRACKS_PREFIX, f"{self.predictions_root}/tracks")):
            relative = _relative(str(location), root)
            if relative is not None:
                return f"{self.media_url.rstrip('/')}/{prefix}/{quote(relative)}"
        raise ValueError(f"{location} is not under {self.previews_root} nor {self.predictions_root}/tracks")

    def image(self, location: Path | str, alt: str) -> dg.MetadataValue:
        return dg.MetadataValue.md(f"![{alt}]({self.url(location)})")


def _relative(location: str, root: str) -> str | None:
    """`location` relative to `root` (both local paths, or both s3:// uris), or None if it is not below it."""
    if root.startswith("s3://"):
        base = root.rstrip("/") + "/"
        return location[len(base) :] if location.startswith(base) else None
    path, folder = Path(location), Path(root)
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else None


@dataclass(frozen=True)
class MediaFolder:
    """A folder the media server serves: `key` below the root of `store` ("" for the root itself)."""

    store: Store
    key: str = ""


def media_folders(previews: PreviewStore) -> dict[str, MediaFolder]:
    """What the media server serves, by URL prefix."""
    return {
        PREVIEWS_PREFIX: MediaFolder(previews.previews()),
        TRACKS_PREFIX: MediaFolder(previews.predictions(), "tracks"),
    }
