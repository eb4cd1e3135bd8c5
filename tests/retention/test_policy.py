"""The retention settings as a user writes them, and the one rule that picks what goes."""

from pathlib import Path

import pytest

from video_assets.retention.policy import DAY_S, Action, choose
from video_assets.settings import DiskGuard, Keep, RetentionSettings, Settings, SettingsError

NOW = 1_800_000_000.0


def test_every_kind_is_set_in_one_place_with_defaults_that_keep_predictions_and_sources(tmp_path) -> None:
    defaults = Settings.from_env({"VIDEO_ASSETS_HOME": str(tmp_path)})
    assert defaults.retention == RetentionSettings()
    assert defaults.retention.predictions.forever and defaults.retention.source_action == "keep"
    assert defaults.disk_guard == DiskGuard(min_free_bytes=2**30) and defaults.notify is None
    custom = Settings.from_env(
        {
            "VIDEO_ASSETS_KEEP_SEGMENTS": "12h",
            "VIDEO_ASSETS_KEEP_LOGS": "7d,500MB",
            "VIDEO_ASSETS_LOG_ROTATE_SIZE": "10MB",
            "VIDEO_ASSETS_KEEP_RUNS": "90d",
            "VIDEO_ASSETS_KEEP_COMPUTE_LOGS": "forever",
            "VIDEO_ASSETS_KEEP_SOURCES": "2GB",
            "VIDEO_ASSETS_PROCESSED_SOURCES": "Move",
            "VIDEO_ASSETS_KEEP_PREDICTIONS": "365d",
            "VIDEO_ASSETS_RETENTION_CRON": "15 * * * *",
            "VIDEO_ASSETS_MIN_FREE": "5%",
        }
    )
    assert custom.retention == RetentionSettings(
        segments=Keep(days=0.5),
        logs=Keep(days=7, bytes=500 * 2**20),
        log_rotate_bytes=10 * 2**20,
        runs=Keep(days=90),
        compute_logs=Keep(),
        sources=Keep(bytes=2 * 2**30),
        source_action="move",
        predictions=Keep(days=365),
        cron="15 * * * *",
    )
    assert custom.disk_guard.min_free_percent == 5 and custom.disk_guard.setting == "5%"
    assert Settings.from_env({"VIDEO_ASSETS_MIN_FREE": "500MB"}).disk_guard.setting == "500.0 MB"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VIDEO_ASSETS_KEEP_SEGMENTS": "a week"}, "must be `forever`, an age \\(7d, 12h\\), a size"),
        ({"VIDEO_ASSETS_KEEP_RUNS": "10GB"}, "VIDEO_ASSETS_KEEP_RUNS='10GB' must be an age such as 30d"),
        ({"VIDEO_ASSETS_PROCESSED_SOURCES": "archive"}, "must be one of keep, move, delete"),
        ({"VIDEO_ASSETS_MIN_FREE": "lots"}, "VIDEO_ASSETS_MIN_FREE='lots' must be a size such as 500MB"),
        ({"VIDEO_ASSETS_MIN_FREE": "100%"}, "a percentage must be below 100"),
        ({"VIDEO_ASSETS_WEBHOOK_URL": "http://127.0.0.1:9/hook"}, "VIDEO_ASSETS_WEBHOOK_SECRET is not"),
        ({"VIDEO_ASSETS_WEBHOOK_URL": "http://h/x", "VIDEO_ASSETS_WEBHOOK_SECRET": "s" * 20,
          "VIDEO_ASSETS_NOTIFY": "camera,everything"}, "unknown events \\['everything'\\]"),
    ],
)  # fmt: skip
def test_malformed_retention_settings_say_how_to_fix_them(env, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def _action(days_old: float, mb: int) -> Action:
    return Action("logs", "delete", f"{days_old}d-{mb}MB", mb * 2**20, NOW - days_old * DAY_S, lambda: None)


def test_too_old_goes_then_the_oldest_until_the_rest_fits_the_budget() -> None:
    candidates = [_action(1, 30), _action(9, 10), _action(3, 30), _action(2, 30), _action(0.1, 30)]
    assert [a.what for a in choose(candidates, Keep(days=7), NOW)] == ["9d-10MB"]
    # 120 MB younger than 7 days, 70 MB allowed: the oldest two of them go too
    assert [a.what for a in choose(candidates, Keep(days=7, bytes=70 * 2**20), NOW)] == ["9d-10MB", "3d-30MB", "2d-30MB"]
    assert [a.what for a in choose(candidates, Keep(bytes=200 * 2**20), NOW)] == []
    assert choose(candidates, Keep(), NOW) == []


def test_a_webhook_turns_notifications_on(tmp_path: Path) -> None:
    env = {"VIDEO_ASSETS_WEBHOOK_URL": "https://hooks.example/abc", "VIDEO_ASSETS_WEBHOOK_SECRET": "not-kept-anywhere-1",
           "VIDEO_ASSETS_NOTIFY": "camera, disk_guard", "VIDEO_ASSETS_CAMERA_DOWN_AFTER": "30"}  # fmt: skip
    notify = Settings.from_env(env).notify
    assert notify is not None and notify.events == {"camera", "disk_guard"} and notify.camera_down_after_s == 30
    assert "not-kept-anywhere-1" not in repr(Settings.from_env(env)) and "hooks.example" not in repr(Settings.from_env(env))
