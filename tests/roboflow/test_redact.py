"""Redaction: an API key never shows in a message or a log line, whatever shape it is in."""

import logging

from video_assets.roboflow.redact import RedactingFilter, redact


def test_redaction_covers_urls_json_and_the_literal_key(api_key) -> None:
    text = f'GET /videoinfer?api_key={api_key}&job_id=1 body {{"api_key": "{api_key}"}} echoed {api_key}'
    assert redact(text, [api_key]) == 'GET /videoinfer?api_key=***&job_id=1 body {"api_key": "***"} echoed ***'
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, "", 0, '%s "%s %s"', ("http://h:80", "GET", f"/v?api_key={api_key}"), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == 'http://h:80 "GET /v?api_key=***"'
