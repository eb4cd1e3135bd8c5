"""The Data Staging and Batch Processing calls one workspace makes, over the shared Roboflow HTTP client.

Every call but the job creation is safe to repeat: asking for a signed URL, a PUT of the same bytes
under the same name, and the reads. The job creation is sent as not idempotent, so an ambiguous
answer is never repeated blindly; the caller resolves it by reading the job (its id is ours).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from video_assets.backends.batch.contract import (
    JobStatus,
    SignedUpload,
    Stage,
    StagedFile,
    job_path,
    parse_batch_type,
    parse_job,
    parse_listing,
    parse_parts,
    parse_signed_upload,
    parse_stages,
    staging_path,
)
from video_assets.roboflow.http import RoboflowHttp, RoboflowRequestError

MULTIPART = "multipart-batch"


class BatchApi:
    def __init__(self, http: RoboflowHttp, api_url: str, workspace: str):
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.workspace = workspace

    # Data Staging --------------------------------------------------------------------------------

    def upload_url(self, batch_id: str, file_name: str) -> SignedUpload:
        params = {"fileName": file_name, "displayName": batch_id}
        return parse_signed_upload(
            self._json(
                "request an upload URL", "POST", staging_path(self.workspace, batch_id, "upload", "video"), params
            )
        )

    def put(self, what: str, upload: SignedUpload, path: Path) -> None:
        self.http.put_file(what, upload.url, path, headers=upload.headers)

    def files(self, batch_id: str) -> list[StagedFile]:
        """Every file of a batch, across its parts when it is a multipart batch (as `export-batch` reads it)."""
        batch_type = parse_batch_type(
            self._json(f"read batch {batch_id}", "GET", staging_path(self.workspace, batch_id))
        )
        if batch_type != MULTIPART:
            return self._pages(batch_id, None)
        body = self._json(f"list the parts of batch {batch_id}", "GET", staging_path(self.workspace, batch_id, "parts"))
        return [f for part in parse_parts(body) for f in self._pages(batch_id, part)]

    def download(self, what: str, url: str, target: Path) -> None:
        self.http.download(what, url, target)

    def _pages(self, batch_id: str, part: str | None) -> list[StagedFile]:
        listed: list[StagedFile] = []
        token: str | None = None
        while True:
            params = {k: v for k, v in (("partName", part), ("nextPageToken", token)) if v}
            page, token = parse_listing(
                self._json(f"list batch {batch_id}", "GET", staging_path(self.workspace, batch_id, "list"), params)
            )
            listed.extend(page)
            if token is None:
                return listed

    # Batch Processing ----------------------------------------------------------------------------

    def create_job(self, job_id: str, definition: dict[str, Any], name: str) -> None:
        self.http.send(
            f"create job {job_id}",
            "POST",
            self._url(job_path(self.workspace, job_id)),
            idempotent=False,
            params=self._params({"name": name}),
            json=definition,
        )

    def job(self, job_id: str) -> JobStatus | None:
        """The job's state; None when the service does not know the job (404)."""
        try:
            return parse_job(self._json(f"check job {job_id}", "GET", job_path(self.workspace, job_id)))
        except RoboflowRequestError as exc:
            if exc.status == 404:
                return None
            raise

    def stages(self, job_id: str) -> list[Stage]:
        return parse_stages(
            self._json(f"list the stages of job {job_id}", "GET", job_path(self.workspace, job_id, "stages"))
        )

    # Plumbing ------------------------------------------------------------------------------------

    def _json(self, what: str, method: str, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self.http.json(what, method, self._url(path), idempotent=True, params=self._params(params or {}))

    def _url(self, path: str) -> str:
        return self.api_url + path

    def _params(self, params: dict[str, str]) -> dict[str, str]:
        return {"api_key": self.http.api_key, **params}
