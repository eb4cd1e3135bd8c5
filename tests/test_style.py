"""Style is part of the suite: ruff (lint and format) and mypy pass on the package, as configured in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

import pytest

from video_assets.settings import REPO_DIR

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "video_assets"],
        ["ruff", "format", "--check", "video_assets"],
        ["mypy"],  # packages and strictness from [tool.mypy]
    ],
    ids=["ruff-lint", "ruff-format", "mypy"],
)
def test_the_package_passes(command: list[str]) -> None:
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=REPO_DIR, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-6000:]}{done.stderr[-2000:]}"
