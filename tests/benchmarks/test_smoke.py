"""The benchmark harness runs (tiny sizes, the fast measurements); its figures are not judged here."""

import json
import subprocess
import sys

import pytest

from video_assets.settings import REPO_DIR


@pytest.mark.slow  # the harness in a subprocess: sensor ticks over 200 files, model rebuilds, five code-location loads
def test_benchmark_harness_smoke_run(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_DIR / "benchmarks" / "run.py"), "--smoke", "--only", "e,f,g", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "smoke.json").read_text())
    assert set(results["e"]["e_ticks"]) == {"20", "200"}
    assert results["f"]["f_by_rows"]["20000"]["rebuild_all_models_s"] > 0
    assert results["g"]["g_heavy_modules_imported"] == []
    assert "| e. sensor tick at 200 files" in (tmp_path / "smoke.md").read_text()


def run_harness(tmp_path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_DIR / "benchmarks" / "run.py"), "--smoke", *args, "--out", str(tmp_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def failures_first(done: subprocess.CompletedProcess) -> str:
    """The harness's own "[row] failed after ...: error" lines (printed last, to stderr), from their start:
    a row's error quotes the services' logs, so the tail alone may not show which row failed, or why."""
    at = done.stderr.find("] failed after ")
    if at < 0:
        return done.stdout[-3000:] + done.stderr[-3000:]
    return done.stderr[done.stderr.rfind("\n", 0, at) + 1 :][:8000] + "\n--- stdout, end ---\n" + done.stdout[-2000:]


def test_an_unknown_row_is_refused_before_anything_is_measured(tmp_path) -> None:
    done = run_harness(tmp_path, "--only", "a,z", timeout=120)
    assert done.returncode != 0 and "unknown row(s) z" in done.stderr
    assert "the rows are a, b, c, d, e, f, g, h, i, j, k, l, m, n" in done.stderr
    assert not list(tmp_path.iterdir())  # nothing measured, nothing written


@pytest.mark.slow  # every measurement at smoke sizes: run workers, the demo, the detector, a preview (minutes)
def test_every_row_letter_the_table_shows_runs_with_only(tmp_path) -> None:
    letters = "a,b,c,d,e,f,g,h,i,j,k,l,m,n"
    done = run_harness(tmp_path, "--only", letters)
    assert done.returncode == 0, failures_first(done)
    table = (tmp_path / "smoke.md").read_text()
    for letter in letters.split(","):
        assert f"| {letter}. " in table, f"row {letter} missing from the table"
