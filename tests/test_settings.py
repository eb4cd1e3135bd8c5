from pathlib import Path

import pytest

from video_assets.backends.resource import Backend
from video_assets.predictions.defs import backend_config, bind_backend
from video_assets.settings import DropFolder, Settings, SettingsError


def test_defaults_derive_every_path_from_home(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.home == tmp_path / "data"
    assert settings.inbox == tmp_path / "data" / "inbox"
    assert settings.predictions_dir == tmp_path / "data" / "predictions"
    assert settings.warehouse_path == tmp_path / "data" / "warehouse.duckdb"
    assert settings.dagster_home == tmp_path / "data" / "dagster"
    assert settings.drop_folders == (DropFolder("inbox", tmp_path / "data" / "inbox"),)


def test_more_drop_folders_each_with_a_source_name(tmp_path) -> None:
    settings = Settings.from_env(
        {"VIDEO_ASSETS_HOME": str(tmp_path), "VIDEO_ASSETS_DROP_FOLDERS": "lobby=/mnt/lobby, dock=/mnt/dock cam"}
    )
    assert [f.source for f in settings.drop_folders] == ["inbox", "lobby", "dock"]
    assert settings.drop_folders[2].path == Path("/mnt/dock cam")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VIDEO_ASSETS_DROP_FOLDERS": "/mnt/x"}, "not of the form name=path"),
        ({"VIDEO_ASSETS_DROP_FOLDERS": "inbox=/mnt/x"}, "must be unique"),
        ({"VIDEO_ASSETS_DROP_FOLDERS": "a b=/mnt/x"}, "may use only letters"),
        ({"VIDEO_ASSETS_SENSOR_INTERVAL": "0"}, "VIDEO_ASSETS_SENSOR_INTERVAL='0' must be a whole number"),
    ],
)
def test_malformed_settings_say_how_to_fix_them(env, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_hosted_settings_come_from_the_environment(tmp_path) -> None:
    env = {
        "VIDEO_ASSETS_HOME": str(tmp_path),
        "VIDEO_ASSETS_BACKEND": "hosted",
        "ROBOFLOW_API_URL": "http://127.0.0.1:1",
        "ROBOFLOW_MODEL": "people/2",
        "VIDEO_ASSETS_HOSTED_FPS": "2",
        "VIDEO_ASSETS_POLL_SECONDS": "5",
        "VIDEO_ASSETS_HOSTED_TIMEOUT": "600",
        "VIDEO_ASSETS_HOSTED_BUDGET_FRAMES": "10000",
        "ROBOFLOW_API_KEY": "rf_value_never_kept",
    }
    settings = Settings.from_env(env)
    config = backend_config(settings)
    assert {k: config[k] for k in ("kind", "api_url", "model", "hosted_fps", "poll_seconds", "hosted_timeout_seconds", "budget_frames")} == {
        "kind": "hosted", "api_url": "http://127.0.0.1:1", "model": "people/2", "hosted_fps": 2,
        "poll_seconds": 5.0, "hosted_timeout_seconds": 600.0, "budget_frames": 10000,
    }
    assert config["state_dir"] == str(tmp_path / "state")
    bound = bind_backend(settings).data
    assert bound["api_key"].env_var_name == "ROBOFLOW_API_KEY"  # an EnvVar, never the value
    assert settings.backend.api_key_set and "rf_value_never_kept" not in repr(settings)
    defaults = Settings.from_env({"VIDEO_ASSETS_HOME": str(tmp_path)})
    resource = Backend(**backend_config(defaults))
    assert (resource.kind, resource.api_url, resource.hosted_fps, resource.poll_seconds) == ("self_hosted", "https://api.roboflow.com", 5, 60.0)
    assert "api_key" not in bind_backend(defaults).data
    with pytest.raises(SettingsError, match="VIDEO_ASSETS_BACKEND='cloud' must be one of self_hosted, hosted, server"):
        Settings.from_env({"VIDEO_ASSETS_BACKEND": "cloud"})
    with pytest.raises(SettingsError, match="VIDEO_ASSETS_POLL_SECONDS='soon' must be a positive number"):
        Settings.from_env({"VIDEO_ASSETS_POLL_SECONDS": "soon"})
