"""The camera file: what it declares, what it refuses, and that credentials never show."""

from pathlib import Path

import pytest

from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE
from video_assets.streams.cameras import CameraConfigError, load_camera_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cameras.toml"
    path.write_text(text)
    return path


def test_cameras_are_declared_with_url_workflow_max_fps_and_mode(tmp_path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "people.json").write_text("{}")
    config = load_camera_config(
        write(
            tmp_path,
            """
            segment_seconds = 30
            refresh_seconds = 120
            [cameras.lobby]
            url = "rtsp://viewer:${LOBBY_PASSWORD}@10.0.0.5:554/stream1"
            max_fps = 5
            mode = "every_frame"
            workflow = "flows/people.json"
            workflow_parameters = { line = [[10, 0], [10, 100]] }
            rtsp_transport = "udp"
            [cameras.dock-2]
            url = "https://cdn.example.com/dock/index.m3u8"
            [cameras.desk]
            url = 0
            """,
        )
    )
    assert (config.segment_s, config.refresh_s) == (30.0, 120.0)
    assert config.names == ["lobby", "dock-2", "desk"]
    lobby, dock, desk = config.cameras
    assert (lobby.max_fps, lobby.mode, lobby.kind, lobby.rtsp_transport) == (5.0, "every_frame", "rtsp", "udp")
    assert lobby.workflow_file == str(tmp_path / "flows" / "people.json")
    assert lobby.workflow_parameters == {"line": [[10, 0], [10, 100]]}
    assert (dock.kind, dock.mode, dock.max_fps, dock.workflow_file) == ("hls", "realtime", None, DEFAULT_WORKFLOW_FILE)
    assert (desk.kind, desk.resolved_url()) == ("webcam", 0)
    assert lobby.capture_options() == "rtsp_transport;udp|timeout;5000000"


def test_passwords_come_from_the_environment_and_never_show(tmp_path) -> None:
    config = load_camera_config(write(tmp_path, '[cameras.lobby]\nurl = "rtsp://viewer:${PW}@cam.local:554/s"\n'))
    lobby = config.get("lobby")
    env = {"PW": "s3cret-pw", "ROBOFLOW_API_KEY": "rf_key_123"}
    assert lobby.resolved_url(env) == "rtsp://viewer:s3cret-pw@cam.local:554/s"
    assert lobby.display_url == "rtsp://***@cam.local:554/s"
    error = "Cannot open rtsp://viewer:s3cret-pw@cam.local:554/s (auth s3cret-pw rejected; api_key=rf_key_123)"
    assert lobby.redact(error, env) == "Cannot open rtsp://***@cam.local:554/s (auth *** rejected; api_key=***)"
    with pytest.raises(CameraConfigError, match=r"Camera 'lobby': its URL uses \$\{PW\}, which is not set"):
        lobby.resolved_url({})


def test_a_missing_file_means_no_cameras(tmp_path) -> None:
    assert load_camera_config(tmp_path / "cameras.toml").cameras == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cameras.lobby]\nurl = 'ftp://x/y'\n", r"\[cameras.lobby\]: url must be an rtsp:// or http\(s\)://"),
        ("[cameras.lobby]\nurl = 'rtsp://x/y'\nmode = 'fast'\n", "mode = 'fast'; use one of realtime, every_frame"),
        ("[cameras.lobby]\nurl = 'rtsp://x/y'\nmax_fps = 0\n", "max_fps = 0 must be a number of at least 0.01"),
        ("[cameras.lobby]\nurl = 'rtsp://x/y'\nmaxfps = 5\n", r"unknown key\(s\) \['maxfps'\]"),
        ("[cameras.'lobby|a']\nurl = 'rtsp://x/y'\n", "camera names may use only letters"),
        ("[cameras.lobby]\nurl = 'rtsp://x/y'\nworkflow = 'nope.json'\n", "nope.json does not exist"),
        ("[cameras.lobby\nurl = 1", "cannot be read as TOML"),
    ],
)
def test_malformed_camera_files_say_what_to_fix(tmp_path, text, message) -> None:
    with pytest.raises(CameraConfigError, match=message):
        load_camera_config(write(tmp_path, text))


def test_asking_for_an_unknown_camera_lists_the_known_ones(tmp_path) -> None:
    config = load_camera_config(write(tmp_path, "[cameras.lobby]\nurl = 0\n"))
    with pytest.raises(CameraConfigError, match="No camera named 'dock' .* configured: lobby"):
        config.get("dock")
