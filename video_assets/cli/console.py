"""The terminal of a CLI command that also runs Dagster in-process: progress here, Dagster's logs to a file."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def console_with_quiet_children(log_path: Path) -> Iterator[TextIO]:
    """Send this process's and its children's stdout/stderr to `log_path`; yield the real terminal.

    Dagster logs to stdout/stderr from inside this process (the SQL build) and from the processes
    it starts; redirecting file descriptors 1 and 2 is the one place that keeps those logs out of
    the terminal.
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
