"""The media server: serves preview pictures and track snapshots, read-only, to the browser showing the UI.

`python -m video_assets.previews.server --host 127.0.0.1 --port 3010` (started by `video-assets dev`).
Only JPEG and PNG files below the previews folder (`/previews/...`) and the tracks folder
(`/tracks/...`) are served; no listings, no hidden (temporary) files, nothing outside those folders.
Published names carry a version token, so responses may be cached.

On many machines those folders are in the cluster's object store (`Settings.shared`): a picture is
fetched when first asked for and kept in a bounded cache under the state folder (its version token
means a cached copy never goes stale). The store's credentials stay in this process: a failed fetch
answers 502 without details.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from collections.abc import Mapping
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from video_assets.previews.store import MediaFolder, PreviewStore, media_folders
from video_assets.settings import Settings
from video_assets.storage import TEMP_SUFFIX, LocalStore

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
CACHE_BYTES = 256 * 2**20  # pictures are tens of kilobytes: thousands of them
CACHE_FOLDER = "media-cache"  # under the state folder


class MediaCache:
    """Pictures fetched from an object store, on local disk up to `max_bytes` (the least recently served
    go first), so a page shown again does not fetch them again."""

    def __init__(self, root: Path, max_bytes: int = CACHE_BYTES):
        self.root, self.max_bytes = root, max_bytes
        self.lock = threading.Lock()
        self.size = sum(size for _, size, _ in self._entries())

    def read(self, prefix: str, folder: MediaFolder, key: str) -> bytes:
        """The object's bytes, from the cache or fetched into it (FileNotFoundError if there is none)."""
        cache = self.root / prefix
        local = cache / key  # where Store.fetch puts it
        try:
            data = local.read_bytes()
            os.utime(local)  # recently served: trimmed last
            return data
        except FileNotFoundError:
            pass
        data = folder.store.fetch(key, cache).read_bytes()
        with self.lock:
            self.size += len(data)
            if self.size > self.max_bytes:
                self._trim()
        return data

    def _entries(self) -> list[tuple[float, int, Path]]:
        """Cached files (not a fetch in progress: hidden), as (last served, size, path)."""
        entries = []
        for path in self.root.rglob("*") if self.root.is_dir() else []:
            try:
                if path.is_file() and not path.name.startswith("."):
                    stat = path.stat()
                    entries.append((stat.st_mtime, stat.st_size, path))
            except FileNotFoundError:
                pass
        return entries

    def _trim(self) -> None:
        """Down to three quarters of the limit, so trimming is rare."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes * 3 // 4:
                break
            path.unlink(missing_ok=True)
            total -= size
        self.size = total


class MediaHandler(BaseHTTPRequestHandler):
    server_version = "video-assets-media"

    def __init__(self, *args, folders: Mapping[str, MediaFolder], cache: MediaCache, **kwargs):
        self.folders, self.cache = folders, cache
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        url_path = urlsplit(self.path).path
        try:
            data = self.read(url_path)
        except Exception as exc:  # the store did not answer: no details (they could name the store's setup)
            sys.stderr.write(f"{url_path}: fetching failed ({type(exc).__name__})\n")
            self.send_error(HTTPStatus.BAD_GATEWAY)
            return
        if data is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", CONTENT_TYPES[Path(url_path).suffix.lower()])
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "public, max-age=86400")
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def read(self, url_path: str) -> bytes | None:
        """The bytes of the picture a URL names, or None if it is not one we serve."""
        prefix, _, rest = unquote(url_path).lstrip("/").partition("/")
        folder = self.folders.get(prefix)
        parts = rest.split("/")
        if folder is None or not rest or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        if Path(parts[-1]).suffix.lower() not in CONTENT_TYPES:
            return None
        key = "/".join([folder.key, *parts]) if folder.key else "/".join(parts)
        if isinstance(folder.store, LocalStore):
            path, base = folder.store.path(key), folder.store.path(folder.key)
            if not path.is_file() or not path.resolve().is_relative_to(base.resolve()):
                return None
            return path.read_bytes()
        try:
            return self.cache.read(prefix, folder, key)
        except (FileNotFoundError, IsADirectoryError):
            return None

    def log_message(self, format: str, *args: object) -> None:  # one line per request, on stderr (the log file)
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve(
    host: str, port: int, folders: Mapping[str, MediaFolder | Path], cache: Path | None = None
) -> ThreadingHTTPServer:
    """Serve `folders` (URL prefix -> a folder of a store, or a local folder); `cache` holds what is
    fetched from an object store (a new temporary folder if None)."""
    served = {prefix: f if isinstance(f, MediaFolder) else MediaFolder(LocalStore(f)) for prefix, f in folders.items()}
    root = cache if cache is not None else Path(tempfile.mkdtemp(prefix="video-assets-media-"))
    _sweep_partial_fetches(root)
    return ThreadingHTTPServer((host, port), partial(MediaHandler, folders=served, cache=MediaCache(root)))


def _sweep_partial_fetches(root: Path) -> None:
    """Hidden partial files a killed server left behind (nothing fetches before the server starts)."""
    for path in root.rglob(f".*{TEMP_SUFFIX}") if root.is_dir() else []:
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m video_assets.previews.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    folders = media_folders(PreviewStore.from_settings(settings))
    server = serve(args.host, args.port or settings.media_port, folders, cache=settings.state_dir / CACHE_FOLDER)
    print(f"serving previews on http://{args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
