"""Your own detector, offline: an ONNX export becomes a model package that the real model block runs.

The detector is a tiny ONNX built here with `onnx`: its one output is a constant Ultralytics-style
head (1, 4 + classes, anchors) in network pixels, so where its boxes must land in the video is known
exactly, letterbox included.
"""

import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from video_assets.backends.base import BackendError
from video_assets.backends.self_hosted import SelfHostedBackend
from video_assets.cli.main import main
from video_assets.definitions import build_definitions
from video_assets.ingest.files import scan_drop_folders
from video_assets.ingest.library import VideoLibrary
from video_assets.models.importer import ModelImportError, import_model, tracking_workflow
from video_assets.models.package import ModelPackageError, load_package
from video_assets.predictions.backfill import classify_partitions
from video_assets.settings import BackendSettings, Settings

NETWORK = (320, 320)  # height, width: a 640x360 frame is scaled by 0.5 to 320x180 and padded 70 px above and below
CLASSES = ("person", "forklift")


def build_onnx(path: Path, boxes, size=NETWORK, classes=CLASSES, metadata: bool = True, anchors: int = 8) -> Path:
    """An ONNX detector whose head always says `boxes`: (centre x, centre y, w, h, class, score) in network pixels."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    head = np.zeros((1, 4 + len(classes), anchors), np.float32)
    for i, (cx, cy, w, h, class_id, score) in enumerate(boxes):
        head[0, :4, i] = (cx, cy, w, h)
        head[0, 4 + class_id, i] = score
    nodes = [  # output = head + 0 * mean(images): the image is an input the graph really uses
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["head", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + len(classes), anchors])],
        [numpy_helper.from_array(head, "head"), numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if metadata:  # what Ultralytics' exporter writes
        for key, value in {"task": "detect", "names": str(dict(enumerate(classes))), "imgsz": str(list(size)), "stride": "32"}.items():
            model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def keys_by_file(settings: Settings) -> dict[str, str]:
    library = VideoLibrary.from_settings(settings)
    return {f.relative_path: library.key_for(f) for f in scan_drop_folders(settings.drop_folders)}


def run_video(settings: Settings, instance, key: str) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    assets = [defs.get_assets_def("raw_video"), defs.get_assets_def("frame_predictions")]
    return dg.materialize(assets, partition_key=key, instance=instance, resources=defs.resources, raise_on_error=False)


def with_workflow(settings: Settings, workflow: Path) -> Settings:
    return Settings(home=settings.home, sensor_interval_s=1, backend=BackendSettings(values={"workflow_file": str(workflow)}))


# -- import ---------------------------------------------------------------------------------------


def test_import_reads_classes_size_and_task_from_the_export(settings, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("VIDEO_ASSETS_HOME", str(settings.home))
    weights = build_onnx(tmp_path / "forklifts v2.onnx", [(160, 110, 40, 20, 1, 0.9)])

    assert main(["model", "import", str(weights)]) == 0
    out, err = capsys.readouterr()

    package = settings.models_dir / "forklifts_v2"
    assert sorted(p.name for p in package.iterdir()) == ["class_names.txt", "inference_config.json", "model_config.json", "weights.onnx"]
    assert json.loads((package / "model_config.json").read_text()) == {
        "model_architecture": "yolov8", "task_type": "object-detection", "backend_type": "onnx"
    }
    assert (package / "class_names.txt").read_text() == "person\nforklift\n"
    network = json.loads((package / "inference_config.json").read_text())["network_input"]
    assert network["training_input_size"] == {"height": 320, "width": 320}
    assert (network["resize_mode"], network["padding_value"]) == ("letterbox", 114)
    assert (package / "weights.onnx").read_bytes() == weights.read_bytes()
    # stdout is a runnable workflow: the shipped tracking with the model in place of motion detection.
    workflow = json.loads(out)
    [model_step] = [s for s in workflow["steps"] if s["type"] == "roboflow_core/roboflow_object_detection_model@v2"]
    assert model_step["model_id"] == str(package)
    tracker = next(s for s in workflow["steps"] if s["name"] == "tracker")
    assert tracker["detections"] == "$steps.model.predictions"
    assert not [s for s in workflow["steps"] if "motion" in s["type"]]
    assert f"as {package}" in err and "2 classes (person, forklift)" in err

    assert main(["model", "list"]) == 0
    listing = capsys.readouterr().out
    assert "forklifts_v2" in listing and "yolov8/onnx" in listing and "320x320" in listing and "person, forklift" in listing


def test_flags_stand_in_for_missing_metadata_and_wrong_exports_are_refused(settings, tmp_path) -> None:
    bare = build_onnx(tmp_path / "bare.onnx", [(160, 110, 40, 20, 0, 0.9)], metadata=False)
    with pytest.raises(ModelImportError, match="pass --task detect"):
        import_model(bare, settings.models_dir)
    with pytest.raises(ModelImportError, match="--classes person,car"):
        import_model(bare, settings.models_dir, task="detect")
    package = import_model(bare, settings.models_dir, name="bare", classes=list(CLASSES), task="detect")
    assert package.classes == CLASSES and package.input_size == (320, 320)  # from the input shape

    with pytest.raises(ModelImportError, match=r"expected one output \(1, 4 \+ 3 classes, anchors\)"):
        import_model(bare, settings.models_dir, name="three", classes=["a", "b", "c"], task="detect")
    with pytest.raises(ModelImportError, match="only object detectors"):
        import_model(bare, settings.models_dir, name="seg", classes=list(CLASSES), task="segment")
    with pytest.raises(ModelImportError, match="its input is 320x320"):
        import_model(bare, settings.models_dir, name="big", classes=list(CLASSES), task="detect", imgsz=(640, 640))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelImportError, match=r"junk\.onnx cannot be loaded as an ONNX model"):
        import_model(tmp_path / "junk.onnx", settings.models_dir)
    assert sorted(p.name for p in settings.models_dir.iterdir()) == ["bare"]  # nothing half-made is left


def test_same_name_needs_replace_and_new_weights_change_the_content_hash(settings, tmp_path) -> None:
    first = import_model(build_onnx(tmp_path / "a.onnx", [(160, 110, 40, 20, 1, 0.9)]), settings.models_dir, name="yard")
    before = first.content_hash()
    moved = build_onnx(tmp_path / "b.onnx", [(200, 110, 40, 20, 1, 0.9)])
    with pytest.raises(ModelImportError, match=r"already exists\. Pass --replace"):
        import_model(moved, settings.models_dir, name="yard")
    second = import_model(moved, settings.models_dir, name="yard", replace=True)
    assert second.path == first.path
    assert second.content_hash() != before
    assert sorted(p.name for p in settings.models_dir.iterdir()) == ["yard"]


# -- what a workflow may load -----------------------------------------------------------------------


def write_workflow(folder: Path, model_id: str) -> Path:
    path = folder / "workflow.json"
    spec = {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}, {"type": "WorkflowParameter", "name": "model", "default_value": model_id}],
        "steps": [{"type": "roboflow_core/roboflow_object_detection_model@v2", "name": "model", "images": "$inputs.image", "model_id": "$inputs.model"}],
        "outputs": [{"type": "JsonField", "name": "predictions", "selector": "$steps.model.predictions"}],
    }
    path.write_text(json.dumps(spec))
    return path


def test_a_package_that_would_run_python_code_is_refused(settings, tmp_path) -> None:
    package = import_model(build_onnx(tmp_path / "a.onnx", [(160, 110, 40, 20, 1, 0.9)]), settings.models_dir, name="sneaky").path
    config = json.loads((package / "model_config.json").read_text())
    (package / "model_config.json").write_text(json.dumps({**config, "model_module": "evil.py", "model_class": "Evil"}))
    (package / "evil.py").write_text("raise SystemExit('this must never run')\n")

    with pytest.raises(ModelPackageError, match="sets model_module, model_class, which would make inference run Python code"):
        load_package(package)
    backend = SelfHostedBackend(workflow_file=str(write_workflow(tmp_path, str(package))))
    with pytest.raises(BackendError, match=f"{package} is refused") as refused:
        backend.identity()
    assert refused.value.permanent


def test_a_missing_package_fails_its_partition_naming_the_folder_and_the_fix(settings, instance, samples_dir, tmp_path) -> None:
    missing = settings.models_dir / "never_imported"
    settings = with_workflow(settings, write_workflow(tmp_path, str(missing)))
    shutil.copy2(samples_dir / "empty_hallway.mp4", settings.inbox / "empty_hallway.mp4")
    [key] = keys_by_file(settings).values()
    instance.add_dynamic_partitions("videos", [key])

    result = run_video(settings, instance, key)

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert f"Model package {missing} does not exist" in message
    assert "video-assets model import WEIGHTS.onnx --name NAME" in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]  # permanent: a person must act


# -- the real model block, end to end ---------------------------------------------------------------


@pytest.mark.slow
def test_the_model_block_lands_boxes_where_the_letterbox_puts_them_and_new_weights_make_results_stale(
    settings, instance, samples_dir, tmp_path
) -> None:
    # Network box centre (160, 110), 40x20 -> frame: x = 160 / 0.5 = 320, y = (110 - 70) / 0.5 = 80, 80x40.
    package = import_model(build_onnx(tmp_path / "a.onnx", [(160, 110, 40, 20, 1, 0.9), (60, 30, 20, 20, 0, 0.1)]),
                           settings.models_dir, name="yard")
    workflow = tmp_path / "yard.json"
    workflow.write_text(json.dumps(tracking_workflow(package)))
    settings = with_workflow(settings, workflow)
    shutil.copy2(samples_dir / "empty_hallway.mp4", settings.inbox / "empty_hallway.mp4")
    [key] = keys_by_file(settings).values()
    instance.add_dynamic_partitions("videos", [key])

    assert run_video(settings, instance, key).success

    rows = pq.read_table(settings.predictions_dir / "detections" / f"video_id={key}").to_pylist()
    assert len(rows) >= 59  # every frame but, at most, the first (the tracker confirms a track on its second sighting)
    assert {(r["class_name"], r["class_id"]) for r in rows} == {("forklift", 1)}  # the 0.1 box is under the threshold
    for row in rows:
        assert (row["x"], row["y"], row["width"], row["height"]) == pytest.approx((320, 80, 80, 40), abs=0.5)
        assert row["confidence"] == pytest.approx(0.9)
    assert len({r["tracker_id"] for r in rows}) == 1
    made_with = rows[0]["workflow_version"]

    # New weights under the same name: the workflow version changes, so the old partition is stale.
    import_model(build_onnx(tmp_path / "b.onnx", [(200, 110, 40, 20, 1, 0.9)]), settings.models_dir, name="yard", replace=True)
    now = SelfHostedBackend(workflow_file=str(workflow)).identity().workflow_version
    assert now != made_with and json.loads(workflow.read_text()) == tracking_workflow(load_package(package.path))
    [state] = classify_partitions(instance, now)
    assert (state.key, state.status, state.detail) == (key, "stale", f"made by {made_with}, now {now}")
    # Dagster's view: the code version the partition was made with is not the asset's code version any more.
    latest = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("frame_predictions")), limit=1)
    recorded = latest.records[0].asset_materialization.tags["dagster/code_version"]
    current = build_definitions(settings).get_assets_def("frame_predictions").code_versions_by_key[dg.AssetKey("frame_predictions")]
    assert (recorded, current) == (made_with, now)
