"""The instance's storage on many machines: dagster-postgres, which in a run worker keeps its connections
for the life of an instance and closes them when the instance is freed (a real Postgres on 127.0.0.1)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from video_assets.runtime import postgres
from video_assets.runtime.instance import instance_config
from video_assets.settings import Settings

QUERIES = 20


@pytest.fixture
def database(postgres_dsn: str) -> str:
    return postgres_dsn.split("dbname=")[1].split()[0]


@pytest.fixture
def home(tmp_path: Path, postgres_server: Any, database: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME with the storage section that dagster.yaml gets on many machines."""
    from servers.cluster_services import PASSWORD_ENV, cluster_file

    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)
    cluster = cluster_file(
        tmp_path, postgres_server, database, "redis://127.0.0.1:1/0", "http://127.0.0.1:1", "bucket/x"
    )
    settings = Settings.from_env({"VIDEO_ASSETS_HOME": str(tmp_path / "va"), "VIDEO_ASSETS_CLUSTER": str(cluster)})
    home = tmp_path / "dagster"
    home.mkdir()
    config = {"storage": instance_config(settings)["storage"]}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def sessions(server: Any, database: str) -> tuple[int, int]:
    """Connections made to `database` since the server started, and those open now."""
    admin = server.connect()
    try:
        cursor = admin.cursor()
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,))
        made = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,))
        return made, cursor.fetchone()[0]
    finally:
        admin.close()


def queries_made(home: Path, server: Any, database: str) -> tuple[int, int]:
    """Connections made by an instance's 2 x QUERIES queries, and those left open once it is freed."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        before, _ = sessions(server, database)
        for i in range(QUERIES):
            instance.get_runs(limit=1)
            instance.report_runless_asset_event(dg.AssetMaterialization("probe", metadata={"i": i}))
        made = sessions(server, database)[0] - before
    del instance
    gc.collect()
    return made, sessions(server, database)[1]


def test_other_processes_connect_for_every_query_as_dagster_postgres_does(home, postgres_server, database):
    made, left_open = queries_made(home, postgres_server, database)
    assert made >= 2 * QUERIES and left_open == 0


def test_a_run_worker_keeps_its_connections_and_frees_them_with_the_instance(
    home, postgres_server, database, monkeypatch
):
    monkeypatch.setattr(postgres, "_keep_connections", False)  # undone after the test
    postgres.keep_connections()
    made, left_open = queries_made(home, postgres_server, database)
    assert made <= 3 and left_open == 0  # a connection per storage at most (runs, events, schedules)
