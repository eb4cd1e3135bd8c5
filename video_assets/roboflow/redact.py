"""Keep API keys out of everything we show: logs, metadata, exception text, stored URLs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
_QUERY_KEY = re.compile(r"(?i)(api_key=)[^&\s\"'#]+")
_JSON_KEY = re.compile(r"(?i)(\"api_key\"\s*:\s*\")[^\"]*")


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every `api_key=...` value and every literal secret replaced by ***."""
    out = _JSON_KEY.sub(rf"\g<1>{MASK}", _QUERY_KEY.sub(rf"\g<1>{MASK}", str(text)))
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    return out


class RedactingFilter(logging.Filter):
    """urllib3 logs request lines (with their query strings) at DEBUG; mask keys in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = redact(record.getMessage())
            record.args = None
        else:
            record.msg = redact(record.msg)
        return True


def install_log_filter(logger_name: str = "urllib3.connectionpool") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
