"""The warehouse: one writer at a time, readers of the published copy never blocked."""

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.slow  # four processes importing dagster, three of them rebuilding every model three times
def test_parallel_rebuilds_and_queries_never_hit_a_lock(settings, defs, write_video, build_sql) -> None:
    write_video("good-000000000001", frames=50, detections_on=list(range(0, 50, 2)))
    assert build_sql(defs).success  # the warehouse exists; now rebuild it while it is read
    script = textwrap.dedent(
        f"""
        import sys, dagster as dg
        from video_assets.definitions import build_definitions
        from video_assets.settings import Settings
        defs = build_definitions(Settings(home=__import__("pathlib").Path({str(settings.home)!r})))
        if sys.argv[1] == "write":
            with dg.DagsterInstance.ephemeral() as instance:
                for _ in range(3):
                    result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups("sql"),
                                            instance=instance, resources=defs.resources)
                    assert result.success
        else:
            import time
            warehouse = defs.resources["warehouse"]
            deadline, queries = time.time() + 600, 0
            while time.time() < deadline:
                with warehouse.read() as conn:
                    assert conn.execute("select frames_processed from video_summary").fetchall() == [(50,)]
                queries += 1
                if queries >= 200:
                    break
            print(queries)
        """
    )
    roles = ("write", "write", "write", "read")
    logs = [settings.home / f"{role}{i}.log" for i, role in enumerate(roles)]
    procs = [
        subprocess.Popen([sys.executable, "-c", script, role], stdout=open(log, "w"), stderr=subprocess.STDOUT)
        for role, log in zip(roles, logs)
    ]
    for proc, log in zip(procs, logs):
        assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
        assert "could not set lock" not in log.read_text().lower()
    assert logs[-1].read_text().strip().splitlines()[-1] == "200"
