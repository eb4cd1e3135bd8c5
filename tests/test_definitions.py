"""The real code location: what it defines, and that loading it stays light."""

import json
import os
import subprocess
import sys

import dagster as dg
import pytest


@pytest.mark.parametrize("kind", ["self_hosted", "hosted"])
def test_the_code_location_loads_without_inference_or_torch(kind, tmp_path) -> None:
    probe = (
        "import json, sys\n"
        "import dagster as dg\n"
        "from video_assets.definitions import defs as code_location\n"
        "defs = code_location()\n"
        "dg.Definitions.validate_loadable(defs)\n"
        "graph = defs.resolve_asset_graph()\n"
        "print(json.dumps({'heavy': sorted(m for m in ('inference', 'torch', 'cv2', 'av') if m in sys.modules),\n"
        "  'assets': sorted(k.to_user_string() for k in graph.get_all_asset_keys()),\n"
        "  'sensors': [s.name for s in defs.sensors]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ROBOFLOW_API_KEY"}  # loading needs no key, hosted or not
    env |= {"VIDEO_ASSETS_HOME": str(tmp_path), "VIDEO_ASSETS_BACKEND": kind, "ROBOFLOW_MODEL": "people/1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["heavy"] == []
    assets = set(loaded["assets"])
    assert {"raw_video", "frame_predictions", "camera_window", "video_summary", "camera_health"} <= assets
    assert loaded["sensors"] == ["drop_folder_sensor", "camera_segments_sensor", "sql_models_automation"]


def test_assets_are_grouped_and_partitioned(defs) -> None:
    graph = defs.resolve_asset_graph()
    for name in ("raw_video", "frame_predictions"):
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "videos" and node.partitions_def.name == "videos"
    summary = graph.get(dg.AssetKey("video_summary"))
    assert summary.group_name == "sql" and dg.AssetKey("frame_predictions") in summary.parent_keys
    assert "frames expected and processed" in defs.get_assets_def("video_summary").descriptions_by_key[summary.key]

