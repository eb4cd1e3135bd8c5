"""Talking to Roboflow's APIs: one HTTP client (timeouts, retries, Retry-After) and one redaction helper."""

DEFAULT_API_URL = "https://api.roboflow.com"
