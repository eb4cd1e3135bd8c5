"""A finished job's results on this machine: its output batch downloaded once, archives unpacked.

The folder of a job (`<state>/batch_exports/<job_id>/`) is written under a hidden name and appears
whole (a directory rename), so a run that finds it may read it. Runs of the same job on this machine
take turns (a lock file): the first downloads, the others find its folder. Signed download URLs
expire: a refused download lists the batch again for fresh URLs, once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import tarfile
from pathlib import Path
from typing import Any

from video_assets.backends.batch.api import BatchApi
from video_assets.backends.batch.contract import ContractError, StagedFile
from video_assets.roboflow.http import RoboflowRequestError
from video_assets.storage import new_token, publish_folder, sweep_stale_temps, temp_path

ARCHIVES = (".tar.gz", ".tgz", ".tar")
RESULT_FILES = (".jsonl",)
_REFUSED_URL = {400, 401, 403, 404, 410}
_STALE_DOWNLOAD_S = 24 * 3600


class ExportCache:
    def __init__(self, root: Path):
        self.root = root

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def fetch(self, api: BatchApi, job_id: str, batch_id: str, log: logging.Logger) -> Path:
        """The job's results folder, downloading the batch unless this machine already has it."""
        final = self.folder(job_id)
        if final.is_dir():
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{job_id}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            if final.is_dir():  # another run downloaded it while this one waited
                return final
            sweep_stale_temps(self.root, _STALE_DOWNLOAD_S)
            build = temp_path(final, new_token())
            build.mkdir()
            try:
                files = api.files(batch_id)
                log.info(f"job {job_id}: downloading {len(files)} results file(s) of batch {batch_id}")
                for index, listed in enumerate(files):
                    self._pull(api, batch_id, listed, build / f"{index:05d}", log)
                publish_folder(build, final)
            finally:
                shutil.rmtree(build, ignore_errors=True)
        return final

    def _pull(self, api: BatchApi, batch_id: str, listed: StagedFile, into: Path, log: logging.Logger) -> None:
        into.mkdir()
        target = into / Path(listed.file_name).name
        try:
            api.download(f"download {listed.file_name}", listed.download_url, target)
        except RoboflowRequestError as exc:
            if exc.status not in _REFUSED_URL:
                raise
            log.warning(
                f"the download URL of {listed.file_name} was refused ({exc}); listing batch {batch_id} again for a fresh one"
            )
            fresh = next((f for f in api.files(batch_id) if f.file_name == listed.file_name), None)
            if fresh is None:
                raise ContractError(f"{listed.file_name} is no longer in batch {batch_id}") from None
            api.download(f"download {listed.file_name}", fresh.download_url, target)
        if target.name.endswith(ARCHIVES):
            with tarfile.open(target) as archive:
                archive.extractall(into, filter="data")  # refuses absolute paths, `..` and links out of `into`
            target.unlink()


def video_rows(folder: Path, marker: str) -> tuple[list[dict[str, Any]], int]:
    """One video's result rows, and how many files they came from.

    Its own files are those whose path (archive member or file name) holds its marker; without any,
    the rows of shared files that name it in a field (a file or video identifier) are its rows.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(RESULT_FILES))
    own = [p for p in files if marker in str(p.relative_to(folder))]
    if own:
        return read_rows(own), len(own)
    named = [row for row in read_rows(files) if _names(row, marker)]
    return named, len(files) if named else 0


def _names(row: dict[str, Any], marker: str) -> bool:
    scopes = [row, *(v for v in row.values() if isinstance(v, dict))]
    return any(isinstance(value, str) and marker in value for scope in scopes for value in scope.values())


def read_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """The JSON objects of JSONL files, in file order; a line that is not an object is a contract error."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    raise ContractError(f"{path.name} line {number} is not JSON") from None
                if not isinstance(row, dict):
                    raise ContractError(f"{path.name} line {number} is not a JSON object")
                rows.append(row)
    return rows
