"""How runs execute: the Dagster instance, the run queue, the Celery run workers and the services
(daemon, webserver, workers) that `video-assets process`, `demo` and `dev` start and stop."""
