"""raw_video on a real instance: a partition whose file is gone fails with what to do."""

from video_assets.failures import is_permanent


def test_a_file_moved_away_after_registration_fails_with_what_to_do(
    settings, defs, drop_sample, register, materialize, failure_message
) -> None:
    path = drop_sample("one_runner.mp4")
    key = register()["one_runner.mp4"]
    path.rename(settings.home / "elsewhere.mp4")
    result = materialize(defs, key)
    assert not result.success
    message = failure_message(result)
    assert f"matches video '{key}'" in message and "put the original back" in message
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert is_permanent(failure.step_failure_data.user_failure_data.metadata)  # not retried: a person must act
