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
