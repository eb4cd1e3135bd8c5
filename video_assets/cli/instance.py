"""The persistent Dagster instance under VIDEO_ASSETS_HOME that the CLI and `dagster dev` share."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

from video_assets.settings import REPO_DIR, Settings

WORKSPACE_FILE = REPO_DIR / "workspace.yaml"

_INSTANCE_YAML = """\
# Written by video-assets when this instance was created; edit freely, it is not overwritten.
telemetry:
  enabled: false
concurrency:
  runs:
    # One run per video; each uses about one core.
    max_concurrent_runs: {max_runs}
    tag_concurrency_limits:
      # Backfills (the nightly schedule's and the UI's) leave room for newly dropped videos.
      - key: video_assets/backfill
        limit: {backfill_runs}
      - key: dagster/backfill
        limit: {backfill_runs}
  pools:
    # The SQL models share pool "duckdb": one writer of warehouse.duckdb at a time.
    default_limit: 1
"""


def prepare_environment(settings: Settings) -> None:
    """Create the folders and pin the environment, so runs launched from here see the same paths."""
    for folder in (settings.inbox, settings.predictions_dir, settings.dagster_home, settings.state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    instance_yaml = settings.dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        max_runs = settings.max_concurrent_runs
        instance_yaml.write_text(_INSTANCE_YAML.format(max_runs=max_runs, backfill_runs=max(1, max_runs - 1)))
    os.environ["VIDEO_ASSETS_HOME"] = str(settings.home)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)


def workspace_file() -> Path:
    if not WORKSPACE_FILE.exists():
        raise FileNotFoundError(
            f"{WORKSPACE_FILE} is missing: install video-assets from a checkout (`pip install -e .`)."
        )
    return WORKSPACE_FILE


@contextmanager
def console_with_quiet_children(log_path: Path) -> Iterator[TextIO]:
    """Send this process's and its children's stdout/stderr to `log_path`; yield the real terminal.

    The code server and run workers Dagster starts inherit file descriptors 1 and 2, so redirecting
    them is the one place that keeps their debug logs out of the terminal.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            console.close()
