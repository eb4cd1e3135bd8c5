"""The PreviewStore resource: where previews and track snapshots live, and the web address they are seen at.

The Dagster UI has no image metadata type; it renders Markdown metadata, images included, in place on
the partition's page, but only Markdown under 1000 characters: longer Markdown (an inlined `data:` URI
of any picture worth seeing is tens of kilobytes) hides behind a "[Show Markdown]" button, and would
bloat the event log with every materialization. So pictures are served by a small read-only web server
(`video-assets dev` runs it: previews/server.py) and the metadata holds short Markdown pointing at it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import dagster as dg

# The media server's URL prefixes and the folders behind them (relative to the store's roots).
PREVIEWS_PREFIX = "previews"
TRACKS_PREFIX = "tracks"
MARKDOWN_INLINE_LIMIT = 1000  # the UI renders shorter Markdown in place, longer behind a button


class PreviewStore(dg.ConfigurableResource):
    predictions_root: str  # the tracks table and its snapshots live under <predictions_root>/tracks
    previews_root: str  # contact sheets and charts
    media_url: str  # where browsers reach the media server, e.g. http://127.0.0.1:3010

    def url(self, path: Path | str) -> str:
        """The address the media server serves a preview file or a snapshot at."""
        path = Path(path)
        for prefix, root in (
            (PREVIEWS_PREFIX, Path(self.previews_root)),
            (TRACKS_PREFIX, Path(self.predictions_root) / "tracks"),
        ):
            if path.is_relative_to(root):
                return f"{self.media_url.rstrip('/')}/{prefix}/{quote(path.relative_to(root).as_posix())}"
        raise ValueError(f"{path} is not under {self.previews_root} nor {self.predictions_root}/tracks")

    def image(self, path: Path | str, alt: str) -> dg.MetadataValue:
        return dg.MetadataValue.md(f"![{alt}]({self.url(path)})")


def media_folders(predictions_root: Path, previews_root: Path) -> dict[str, Path]:
    """What the media server serves, by URL prefix."""
    return {PREVIEWS_PREFIX: previews_root, TRACKS_PREFIX: predictions_root / "tracks"}
