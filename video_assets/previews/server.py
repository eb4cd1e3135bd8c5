"""The media server: serves preview pictures and track snapshots, read-only, to the browser showing the UI.

`python -m video_assets.previews.server --host 127.0.0.1 --port 3010` (started by `video-assets dev`).
Only JPEG and PNG files below the previews folder (`/previews/...`) and the tracks folder
(`/tracks/...`) are served; no listings, no hidden (temporary) files, nothing outside those folders.
Published names carry a version token, so responses may be cached.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from video_assets.previews.store import media_folders
from video_assets.settings import Settings

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


class MediaHandler(BaseHTTPRequestHandler):
    server_version = "video-assets-media"

    def __init__(self, *args, folders: dict[str, Path], **kwargs):
        self.folders = folders
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        path = self.resolve(urlsplit(self.path).path)
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        data = path.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", CONTENT_TYPES[path.suffix.lower()])
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "public, max-age=86400")
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def resolve(self, url_path: str) -> Path | None:
        """The file a URL names, or None if it is not one we serve."""
        prefix, _, rest = unquote(url_path).lstrip("/").partition("/")
        root = self.folders.get(prefix)
        parts = rest.split("/")
        if root is None or not rest or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        path = root.joinpath(*parts)
        if path.suffix.lower() not in CONTENT_TYPES or not path.is_file():
            return None
        resolved, base = path.resolve(), root.resolve()
        return path if resolved.is_relative_to(base) else None

    def log_message(self, format: str, *args: object) -> None:  # one line per request, on stderr (the log file)
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve(host: str, port: int, folders: dict[str, Path]) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), partial(MediaHandler, folders=folders))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m video_assets.previews.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    server = serve(
        args.host, args.port or settings.media_port, media_folders(settings.predictions_dir, settings.previews_dir)
    )
    print(f"serving previews on http://{args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
