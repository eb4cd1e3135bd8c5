"""HTTP calls with timeouts, retries with backoff, Retry-After and redacted errors: `RetryingHttp`, and
`RoboflowHttp` for Roboflow's APIs (hosted video, Vision Events). The webhook sink (notify/) uses the
same client, with its URL and signing secret as the strings to redact.

Whether a failed call may be retried depends on whether it could have had an effect:
- reads (GET), the signed-URL request and the upload (PUT) are safe to repeat;
- a job submission is not: it may be retried only when the server certainly did not act on it
  (the connection was never made, or it answered 429 / 503). Any other failure of a submission
  (500, 502, 504, a read timeout, a dropped connection, an unreadable answer) is *ambiguous*: a job
  may exist and be billed, so the caller gets a `RoboflowRequestError` with `ambiguous=True`
  and must not submit again on its own.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from video_assets.roboflow.redact import install_log_filter, redact

NOT_ACTED_ON = {429, 503}  # the server says it did not process the request: safe to send again


class HttpRequestError(Exception):
    """A call failed for good. The message is redacted and says what to do."""

    def __init__(self, message: str, status: int | None = None, ambiguous: bool = False):
        super().__init__(message)
        self.status = status
        self.ambiguous = ambiguous


class RoboflowRequestError(HttpRequestError):
    """A call to a Roboflow API failed for good."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # per call, including the first
    backoff_s: float = 2.0  # first wait; doubles each attempt, with jitter
    max_backoff_s: float = 60.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_retry_after_s: float = 600.0  # a longer Retry-After is treated as a failure, not waited out

    def backoff(self, attempt: int) -> float:
        base = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)


@dataclass
class _Failure:
    message: str
    status: int | None = None
    reached_server: bool = True  # False: the request never left this machine
    retry_after_s: float | None = None

    @property
    def may_have_acted(self) -> bool:
        """The server may have carried the request out (no answer, a 5xx, or an unreadable answer)."""
        if not self.reached_server or self.status in NOT_ACTED_ON:
            return False
        return self.status is None or self.status >= 500

    def retryable(self, idempotent: bool) -> bool:
        if not self.reached_server or self.status in NOT_ACTED_ON:
            return True
        return idempotent and self.may_have_acted


class RetryingHttp:
    """One HTTP session; every error message passes through `redact`, which removes each of `secrets`."""

    error_type: type[HttpRequestError] = HttpRequestError

    def __init__(
        self,
        secrets: Sequence[str],
        policy: RetryPolicy,
        log: logging.Logger,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.secrets = list(secrets)
        self.policy = policy
        self.log = log
        self.sleep = sleep
        self.session = requests.Session()
        install_log_filter()

    def redact(self, text: object) -> str:
        return redact(text, self.secrets)

    def send(self, what: str, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> requests.Response:
        """Call and return any successful (2xx) answer."""
        return self._call(what, method, url, idempotent=idempotent, **kwargs)

    def json(self, what: str, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> dict[str, Any]:
        """Call and parse a JSON object; an unreadable answer counts as a failed attempt."""
        response = self._call(what, method, url, idempotent=idempotent, expect_json=True, **kwargs)
        return response.json()

    def put_file(
        self, what: str, url: str, path: Path, content_type: str | None = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """PUT a file streamed from disk (reopened for every attempt, never read whole), with the headers a
        signed URL was made for."""
        sent = {**(headers or {}), **({"Content-Type": content_type} if content_type else {})}
        return self._call(what, "PUT", url, idempotent=True, body_path=path, headers=sent)

    def download(self, what: str, url: str, target: Path) -> None:
        """GET a file into `target`, streamed in chunks; an answer cut off midway starts the file over."""
        for attempt in range(1, self.policy.attempts + 1):
            response = self._call(what, "GET", url, idempotent=True, stream=True)
            try:
                with response, open(target, "wb") as out:
                    for chunk in response.iter_content(chunk_size=1 << 20):
                        out.write(chunk)
                return
            except requests.RequestException as exc:
                message = f"{what}: the answer was cut off: {type(exc).__name__}: {self.redact(exc)}"
                if attempt == self.policy.attempts:
                    raise RoboflowRequestError(f"{message} (after {attempt} attempts)") from None
                self.log.warning(f"{message}; retry {attempt}/{self.policy.attempts - 1}")
                self.sleep(self.policy.backoff(attempt))

    def _call(
        self,
        what: str,
        method: str,
        url: str,
        *,
        idempotent: bool,
        expect_json: bool = False,
        body_path: Path | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        attempts = self.policy.attempts
        for attempt in range(1, attempts + 1):
            failure = self._attempt(what, method, url, expect_json, body_path, kwargs)
            if isinstance(failure, requests.Response):
                return failure
            if not failure.retryable(idempotent) or attempt == attempts:
                raise self._error(failure, idempotent, attempt)
            wait = failure.retry_after_s if failure.retry_after_s is not None else self.policy.backoff(attempt)
            if wait > self.policy.max_retry_after_s:
                raise self._error(failure, idempotent, attempt, note=f"the server asks to wait {wait:.0f} s")
            self.log.warning(f"{failure.message}; retry {attempt}/{attempts - 1} in {wait:.1f} s")
            self.sleep(wait)
        raise AssertionError("unreachable")

    def _attempt(
        self, what: str, method: str, url: str, expect_json: bool, body_path: Path | None, kwargs: dict[str, Any]
    ) -> requests.Response | _Failure:
        timeout = (self.policy.connect_timeout_s, self.policy.read_timeout_s)
        try:
            if body_path is not None:
                with open(body_path, "rb") as body:
                    response = self.session.request(method, url, data=body, timeout=timeout, **kwargs)
            else:
                response = self.session.request(method, url, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            return _Failure(f"{what}: {type(exc).__name__}: {self.redact(exc)}", reached_server=not _never_sent(exc))
        if not response.ok:
            return _Failure(
                f"{what}: HTTP {response.status_code} {self.redact(_excerpt(response.text))}",
                status=response.status_code,
                retry_after_s=_retry_after_s(response.headers.get("Retry-After")),
            )
        if expect_json:
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return _Failure(f"{what}: the answer is not a JSON object ({self.redact(_excerpt(response.text))!r})")
        return response

    def _error(self, failure: _Failure, idempotent: bool, attempts: int, note: str = "") -> HttpRequestError:
        ambiguous = not idempotent and failure.may_have_acted
        tried = f" (after {attempts} attempts)" if attempts > 1 else ""
        suffix = f"; {note}" if note else ""
        return self.error_type(f"{failure.message}{tried}{suffix}", status=failure.status, ambiguous=ambiguous)


class RoboflowHttp(RetryingHttp):
    """One session to a Roboflow API; the API key never appears in an error."""

    error_type = RoboflowRequestError

    def __init__(
        self,
        api_key: str,
        policy: RetryPolicy,
        log: logging.Logger,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__([api_key], policy, log, sleep)
        self.api_key = api_key


def _never_sent(exc: Exception) -> bool:
    """True when the connection could not even be opened, so the server saw nothing."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return any(marker in text for marker in ("NewConnectionError", "Connection refused", "NameResolutionError"))


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
