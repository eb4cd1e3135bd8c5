"""(e) Drop-folder sensor tick time as the folder grows, evaluated like the daemon does."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg

from video_assets.definitions import build_definitions
from video_assets.ingest.sensor import SENSOR_NAME
from video_assets.settings import Settings

NEW_FILES = 10


def sensor_ticks(work: Path, counts: tuple[int, ...]) -> dict:
    results = {}
    for count in counts:
        results[str(count)] = _ticks_for(work / f"sensor_{count}", count)
    largest = results[str(counts[-1])]
    return {
        "e_ticks": results,
        "e_worst_tick_s_at_largest": max(largest["steady_tick_s"], largest["new_files_tick_s"]),
        "e_largest": counts[-1],
    }


def _ticks_for(home: Path, count: int) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, sensor_interval_s=1)
    _write_files(settings.inbox, count, prefix="old")
    defs = build_definitions(settings)
    settings.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        tick = _Ticker(defs, instance)
        started = time.perf_counter()
        ticks = tick.until_settled()
        register_s = time.perf_counter() - started
        steady = min(tick.timed() for _ in range(3))
        _write_files(settings.inbox, NEW_FILES, prefix="new")
        observe = tick.timed()
        settle = tick.timed()
        assert tick.last_runs == NEW_FILES, tick.last_runs
    return {
        "register_all_s": round(register_s, 2),
        "register_ticks": ticks,
        "steady_tick_s": round(steady, 3),
        "new_files_tick_s": round(max(observe, settle), 3),
    }


class _Ticker:
    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance, self.cursor, self.last_runs = defs, instance, None, 0

    def timed(self) -> float:
        started = time.perf_counter()
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs,
                                          resources=self.defs.resources)
        result = self.defs.get_sensor_def(SENSOR_NAME)(context)
        for request in result.dynamic_partitions_requests:  # the daemon applies these as part of the tick
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor, self.last_runs = result.cursor, len(result.run_requests)
        return time.perf_counter() - started

    def until_settled(self) -> int:
        ticks = 0
        while True:
            self.timed()
            ticks += 1
            if ticks > 1 and self.last_runs == 0:
                return ticks


def _write_files(folder: Path, count: int, prefix: str) -> None:
    """Small distinct files with video names, 500 per subfolder (the sensor hashes, it does not decode)."""
    for i in range(count):
        sub = folder / f"{prefix}{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{prefix}_{i:05d}.mp4").write_bytes(os.urandom(1024))
