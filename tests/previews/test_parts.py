"""The small parts of previews: workflow geometry, the media server's rules, progress lines, SQL model columns."""

from __future__ import annotations

import threading

import pytest
import requests

from video_assets.predictions.progress import ProgressLog
from video_assets.previews.geometry import geometry_for, geometry_of
from video_assets.previews.server import serve
from video_assets.sql.assets import transposed_table
from video_assets.sql.models import SqlModelError, load_models

SPEC = {
    "inputs": [
        {"type": "WorkflowParameter", "name": "line", "default_value": [[0, 10], [100, 10]]},
        {"type": "WorkflowParameter", "name": "zones", "default_value": [[[0, 0], [5, 0], [5, 5]], [[9, 9], [12, 9], [12, 12]]]},
    ],
    "steps": [
        {"type": "roboflow_core/line_counter@v2", "name": "door", "line_segment": "$inputs.line"},
        {"type": "roboflow_core/line_counter@v1", "name": "gate", "line_segment": [[1, 2], [3, 4]], "triggering_anchor": "BOTTOM_CENTER"},
        {"type": "roboflow_core/time_in_zone@v3", "name": "desk", "zone": "$inputs.zones"},
        {"type": "roboflow_core/line_counter@v2", "name": "broken", "line_segment": [[1, 2]]},
    ],
}


def test_lines_and_zones_come_from_the_spec_and_the_runs_parameters() -> None:
    geometry = geometry_of(SPEC, {"line": [[0, 50], [100, 50]]})
    door, gate = geometry.lines  # the malformed "broken" line is left out
    assert (door.name, door.start, door.end, door.anchor) == ("door", (0.0, 50.0), (100.0, 50.0), None)
    assert (gate.start, gate.anchor) == ((1.0, 2.0), "BOTTOM_CENTER")
    [desk] = geometry.zones
    assert desk.name == "desk" and len(desk.polygons) == 2 and desk.anchor == "CENTER"
    assert geometry_of(None) == geometry_of({"steps": []}) and not geometry_of(None)


def test_only_the_workflow_that_made_the_predictions_is_drawn() -> None:
    drawn, note = geometry_for("inline:aaa", SPEC, "inline:aaa")
    assert drawn and note == "line door, line gate, zone desk"
    other, why = geometry_for("inline:old", SPEC, "inline:aaa")
    assert not other and "made by workflow inline:old, configured now inline:aaa" in why
    saved, why = geometry_for("ws/flow@3", None, None)
    assert not saved and "saved" in why


@pytest.fixture
def media(tmp_path):
    previews, tracks = tmp_path / "previews", tmp_path / "predictions" / "tracks"
    (previews / "v" / "tok").mkdir(parents=True)
    (previews / "v" / "tok" / "contact_sheet.jpg").write_bytes(b"\xff\xd8jpeg")
    (previews / "v" / "tok" / "notes.txt").write_text("not a picture")
    (previews / "v" / ".tok2.tmp").mkdir()
    (previews / "v" / ".tok2.tmp" / "contact_sheet.jpg").write_bytes(b"half written")
    (tmp_path / "secret.jpg").write_bytes(b"outside")
    server = serve("127.0.0.1", 0, {"previews": previews, "tracks": tracks})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_media_server_serves_published_pictures_and_nothing_else(media) -> None:
    ok = requests.get(f"{media}/previews/v/tok/contact_sheet.jpg", timeout=5)
    assert ok.status_code == 200 and ok.content == b"\xff\xd8jpeg" and ok.headers["Content-Type"] == "image/jpeg"
    for path in ("/previews/v/tok/notes.txt", "/previews/v/.tok2.tmp/contact_sheet.jpg", "/previews/v/tok/",
                 "/previews/../secret.jpg", "/previews/v/tok/%2e%2e/%2e%2e/../secret.jpg", "/state/x.jpg", "/"):
        assert requests.get(media + path, timeout=5).status_code == 404, path


def test_progress_lines_say_frames_done_speed_and_time_left() -> None:
    now = [0.0]
    lines: list[str] = []

    class Log:
        def info(self, message: str) -> None:
            lines.append(message)

    class Sink:
        def add_frame(self, frame) -> None:
            pass

    progress = ProgressLog(Sink(), expected=1000, log=Log(), video_id="v", every_s=10, clock=lambda: now[0])
    for i in range(300):
        now[0] = i * 0.1  # 10 frames a second
        progress.add_frame(None)
    assert lines == ["v: 101 of 1000 frames (10 %), 10.1 frames/s, 89 s left", "v: 201 of 1000 frames (20 %), 10.1 frames/s, 80 s left"]


def test_a_wide_preview_is_shown_one_line_per_column() -> None:
    text = transposed_table(["a", "b|c", "long"], [(1, None, "x" * 100), (2, "y", "z")])
    assert text.splitlines() == [
        "| column | row 1 | row 2 |",
        "|---|---|---|",
        "| **a** | 1 | 2 |",
        "| **b\\|c** |  | y |",
        f"| **long** | {'x' * 39}… | z |",
    ]


def test_column_descriptions_must_be_strings(tmp_path) -> None:
    (tmp_path / "m.sql").write_text("select 1 as a")
    (tmp_path / "m.yml").write_text("columns:\n  a: [not, a, sentence]\n")
    with pytest.raises(SqlModelError, match=r"m\.yml: `columns` must map each column name to its description"):
        load_models(tmp_path)
    (tmp_path / "m.yml").write_text("columns:\n  a: >\n    The answer,\n    folded.\n")
    assert load_models(tmp_path)[0].columns == {"a": "The answer, folded."}


def test_runs_are_named_for_their_purpose(tmp_path) -> None:
    from video_assets.definitions import build_definitions
    from video_assets.settings import Settings

    defs = build_definitions(Settings(home=tmp_path))
    assert defs.resolve_sensor_def("drop_folder_sensor").job_name == "process_video"
    assert defs.resolve_schedule_def("video_backfill").job_name == "process_video"
    assert defs.resolve_sensor_def("camera_segments_sensor").job_name == "publish_camera_hour"
    jobs = {job.name: job for job in defs.resolve_all_job_defs()}
    assert {"process_video", "publish_camera_hour", "build_sql_models"} <= set(jobs)
    sql = {key.to_user_string() for key in jobs["build_sql_models"].asset_layer.executable_asset_keys}
    assert "object_events" in sql and "video_summary" in sql and "video_preview" not in sql
