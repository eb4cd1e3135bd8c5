from pathlib import Path

import pytest

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
