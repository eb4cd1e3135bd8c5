"""A drop folder with its own workflow (VIDEO_ASSETS_SOURCE_WORKFLOWS): parsed, checked, chosen by the video's source."""

import pytest

from video_assets.backends.base import BackendError
from video_assets.backends.resource import Backend
from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE, FACE_WORKFLOW_FILE, SelfHostedBackend
from video_assets.predictions.defs import backend_config, configured_workflow_version
from video_assets.settings import Settings, SettingsError


def env(tmp_path, **extra: str) -> dict[str, str]:
    return {"VIDEO_ASSETS_HOME": str(tmp_path / "home"), "VIDEO_ASSETS_DROP_FOLDERS": f"faces={tmp_path / 'faces'}", **extra}


def test_each_source_gets_its_own_workflow_and_version(tmp_path) -> None:
    settings = Settings.from_env(env(tmp_path, VIDEO_ASSETS_SOURCE_WORKFLOWS=f"faces={FACE_WORKFLOW_FILE}"))
    backend = Backend(**backend_config(settings))

    assert backend.implementation("faces").workflow_file == FACE_WORKFLOW_FILE
    assert backend.implementation("inbox").workflow_file == DEFAULT_WORKFLOW_FILE
    motion = SelfHostedBackend().identity().workflow_version
    faces = SelfHostedBackend(workflow_file=FACE_WORKFLOW_FILE).identity().workflow_version
    assert motion != faces
    assert backend.workflow_versions() == {"": motion, "faces": faces}
    assert backend.identity("faces").workflow_version == faces
    # Dagster's code version of frame_predictions covers every workflow in use.
    assert configured_workflow_version(settings) == f"{motion};faces={faces}"
    assert configured_workflow_version(Settings.from_env(env(tmp_path))) == motion


@pytest.mark.parametrize(
    ("value", "extra", "message"),
    [
        ("dock=/w.json", {}, "names dock, which is not a drop folder"),
        ("faces", {}, "entry 'faces' is not a new source=workflow.json pair"),
        ("faces=/a.json,faces=/b.json", {}, "entry 'faces=/b.json' is not a new source=workflow.json pair"),
        ("faces=/a.json", {"VIDEO_ASSETS_BACKEND": "hosted"}, "which the hosted backend does not run"),
    ],
)
def test_a_wrong_setting_is_refused_when_settings_are_read(tmp_path, value, extra, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env(tmp_path, VIDEO_ASSETS_SOURCE_WORKFLOWS=value, **extra))


def test_a_run_that_switches_to_hosted_refuses_a_source_workflow_before_paying(tmp_path) -> None:
    settings = Settings.from_env(env(tmp_path, VIDEO_ASSETS_SOURCE_WORKFLOWS=f"faces={FACE_WORKFLOW_FILE}"))
    hosted = Backend(**{**backend_config(settings), "kind": "hosted", "model": "yard/3"})
    with pytest.raises(BackendError, match="the hosted backend does not run") as refused:
        hosted.implementation("faces")
    assert refused.value.permanent
    assert hosted.implementation("inbox").identity().backend == "hosted"
