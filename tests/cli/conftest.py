"""Fixtures of the CLI tests: the command, and what it leaves running."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cli() -> str:
    """The `video-assets` console script of this virtualenv."""
    return str(Path(sys.executable).with_name("video-assets"))


@pytest.fixture(scope="session")
def processes_using() -> Callable[[Path], list[str]]:
    """Command lines of the processes (other than this one) whose environment points at a VIDEO_ASSETS_HOME:
    what a command started and should have stopped."""

    def find(home: Path) -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if f"VIDEO_ASSETS_HOME={home}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                        found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
                except OSError:
                    pass
        return found

    return find
