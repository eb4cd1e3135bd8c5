"""Fixtures of the preview tests: a headless Chromium, and the UI with the media server behind it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsers.chromium import Chromium, chromium_binary
from servers.live_ui import LiveUi
from servers.live_ui import live_ui as start_live_ui


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    if chromium_binary() is None:
        pytest.fail("Chromium is not installed (apt-get install -y chromium): the UI tests need a real browser")
    browser = Chromium(tmp_path / "chromium-profile", width=1920, height=2000)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def live_ui(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Iterator[LiveUi]:
    """`video-assets dev`'s services, the media server included, on a temporary home."""
    with start_live_ui(tmp_path_factory.mktemp("ui"), {}) as ui:
        yield ui


@pytest.fixture(scope="module")
def copy_sample(samples_dir: Path):
    def copy(name: str, inbox: Path) -> Path:
        return Path(shutil.copy2(samples_dir / name, inbox / name))

    return copy
