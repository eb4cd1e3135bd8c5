"""Partition keys for videos: a readable, sanitized name plus a short content hash.

The hash makes the key identify *content*: the same bytes under two names are one video, and a
changed file under the same name is a new one. Keys use only `[A-Za-z0-9._-]`, so they are valid
Dagster partition keys (no `...`, no control characters, none of `|,[]`), hive path segments and
URL parts.
"""

from __future__ import annotations

import re
import unicodedata

HASH_CHARS = 12
MAX_NAME_CHARS = 60
_KEY_RE = re.compile(rf"^(?P<name>[A-Za-z0-9._-]+)-(?P<hash>[0-9a-f]{{{HASH_CHARS}}})$")


def readable_name(relative_path: str) -> str:
    """Fold a relative path to ASCII letters, digits, `.`, `_`, `-` (never `..`)."""
    text = unicodedata.normalize("NFKD", relative_path).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    text = re.sub(r"\.{2,}", ".", text)
    text = text.strip("._-")[:MAX_NAME_CHARS].rstrip("._-")
    return text or "video"


def video_key(relative_path: str, sha256: str) -> str:
    return f"{readable_name(relative_path)}-{sha256[:HASH_CHARS]}"


def hash_of_key(key: str) -> str | None:
    """The content-hash prefix a key was made from, or None for a key we did not make."""
    match = _KEY_RE.match(key)
    return match.group("hash") if match else None


def name_of_key(key: str) -> str | None:
    match = _KEY_RE.match(key)
    return match.group("name") if match else None
