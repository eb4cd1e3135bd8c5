"""The real code location: what it defines, and that loading it stays light."""

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from video_assets.backends.resources import Backend, backend_config_from_env
from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE


@pytest.mark.parametrize("kind", ["self_hosted", "hosted"])
def test_the_code_location_loads_without_inference_or_torch(kind, tmp_path) -> None:
    probe = (
        "import json, sys\n"
        "import dagster as dg\n"
        "from video_assets.definitions import defs\n"
        "dg.Definitions.validate_loadable(defs)\n"
        "graph = defs.resolve_asset_graph()\n"
        "print(json.dumps({'heavy': sorted(m for m in ('inference', 'torch', 'cv2', 'av') if m in sys.modules),\n"
        "  'assets': sorted(k.to_user_string() for k in graph.get_all_asset_keys()),\n"
        "  'sensors': [s.name for s in defs.sensors]}))\n"
    )
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(tmp_path), "VIDEO_ASSETS_BACKEND": kind, "ROBOFLOW_MODEL": "people/1"}
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


def test_backend_is_chosen_by_environment() -> None:
    def self_hosted(env):
        return Backend(**backend_config_from_env(env)).self_hosted_backend()

    assert self_hosted({}).workflow_file == DEFAULT_WORKFLOW_FILE
    assert self_hosted({"VIDEO_ASSETS_WORKFLOW": "/w.json"}).workflow_file == "/w.json"
    saved = self_hosted({"ROBOFLOW_WORKSPACE": "acme", "ROBOFLOW_WORKFLOW": "people"})
    assert saved.uses_saved_workflow and saved.workflow_id == "people"
