"""The notification sensors on real runs, real status files and a real (small) disk, delivering to a real receiver."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from video_assets.definitions import build_definitions
from video_assets.notify.sensors import HEALTH_SENSOR, RUN_FAILURE_SENSOR, RUN_SUCCESS_SENSOR
from video_assets.settings import API_KEY_ENV, BackendSettings, DiskGuard, NotifySettings, Settings
from video_assets.streams.store import CameraStore


def test_no_webhook_no_notification_sensors(settings, notifying) -> None:
    names = {s.name for s in build_definitions(settings).sensors}
    assert not names & {RUN_FAILURE_SENSOR, RUN_SUCCESS_SENSOR, HEALTH_SENSOR}
    assert {RUN_FAILURE_SENSOR, RUN_SUCCESS_SENSOR, HEALTH_SENSOR} <= {s.name for s in build_definitions(notifying).sensors}


def test_a_video_that_failed_for_good_is_notified(notifying, instance, drop_sample, register, materialize, receiver, run_sensor) -> None:
    path = drop_sample("one_runner.mp4")
    key = register()["one_runner.mp4"]
    path.unlink()
    defs = build_definitions(notifying)
    failed = materialize(defs, key)
    run_sensor(defs, RUN_FAILURE_SENSOR, failed)
    [got] = receiver.received
    assert got.signature_ok and got.event == "video_failed"
    assert got.body["title"].startswith(f"Video {key} failed: No file in the drop folders")
    assert got.body["details"]["partition"] == key and got.body["details"]["run_id"] == failed.run_id


def test_a_failing_data_test_is_notified_with_its_offending_rows(notifying, instance, write_video, receiver, run_sensor) -> None:
    write_video("good-000000000001", frames=3)
    write_video("bad-000000000002", frames=2, backend="not-a-backend")
    defs = build_definitions(notifying)
    result = dg.materialize([defs.get_assets_def("video_summary")], instance=instance, resources=defs.resources, raise_on_error=False)
    assert not result.success  # the data tests are blocking
    run_sensor(defs, RUN_FAILURE_SENSOR, result)
    [got] = receiver.received
    assert got.signature_ok and got.event == "data_test"
    assert got.body["title"] == "Data test accepted_values_backend of video_summary failed"
    assert got.body["details"]["offending_rows"] == 1 and got.body["details"]["severity"] == "ERROR"


def hosted(settings: Settings, fake_api, **values) -> Settings:
    fields = {"api_url": fake_api.url, "poll_seconds": 0.01, "backoff_seconds": 0.01, "request_timeout_seconds": 5.0, "model": "people-detect/3"}
    return dataclasses.replace(settings, backend=BackendSettings(kind="hosted", values={**fields, **values}, api_key_set=True))


HOSTED_STEPS = ("raw_video", "uploaded_video", "inference_job", "frame_predictions")


def test_a_hosted_job_that_finished_or_failed_is_notified(
    notifying, instance, drop_sample, register, materialize, fake_api, api_key, monkeypatch, receiver, run_sensor
) -> None:
    monkeypatch.setenv(API_KEY_ENV, api_key)
    drop_sample("two_walkers.mp4")
    drop_sample("one_runner.mp4")
    keys = register()
    defs = build_definitions(hosted(notifying, fake_api))
    finished = materialize(defs, keys["two_walkers.mp4"], HOSTED_STEPS)
    assert finished.success
    run_sensor(defs, RUN_SUCCESS_SENSOR, finished)
    [done] = receiver.received
    job_id = next(iter(fake_api.jobs))
    assert done.signature_ok and (done.event, done.body["details"]["status"], done.body["details"]["job_id"]) == ("hosted_job", "finished", job_id)

    fake_api.hold_jobs = True
    waiting = build_definitions(hosted(notifying, fake_api, hosted_timeout_seconds=0.3))
    assert not materialize(waiting, keys["one_runner.mp4"], HOSTED_STEPS).success  # gave up waiting; the job stays
    [held] = [j for j in fake_api.jobs if j != job_id]
    fake_api.fail_job(held, "Model people-detect/3 is not supported")
    failed = materialize(waiting, keys["one_runner.mp4"], HOSTED_STEPS)
    run_sensor(waiting, RUN_FAILURE_SENSOR, failed)
    notified = {r.event: r for r in receiver.received[1:]}
    assert notified["hosted_job"].body["details"]["status"] == "failed"
    assert "not supported" in notified["hosted_job"].body["title"] and notified["hosted_job"].signature_ok
    assert "video_failed" in notified  # a failed paid job needs a person: permanent


def health_tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> tuple[str, str]:
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        result = defs.get_sensor_def(HEALTH_SENSOR)(context)
        return context.cursor, result.skip_message


def test_a_camera_down_for_longer_than_the_setting_and_back_is_notified_once_each(
    notifying, instance, worker_status, receiver
) -> None:
    notifying.camera_config_path.write_text('[cameras.lobby]\nurl = "rtsp://cam/s"\n[cameras.dock]\nurl = "rtsp://cam/d"\n')
    cameras = CameraStore.from_settings(notifying)
    now = datetime.now(UTC)
    silent = (now - timedelta(seconds=45)).isoformat()  # the setting: 30 s
    cameras.write_status("lobby", worker_status(state="reconnecting", detail="", last_frame_ts=silent, last_error="timed out"))
    defs = build_definitions(notifying)
    cursor, _ = health_tick(defs, instance, None)
    cursor, message = health_tick(defs, instance, cursor)  # still down: not again
    assert receiver.events() == [("camera", "down")] and "0 new notification(s)" in message
    [down] = receiver.received
    assert down.signature_ok and down.body["title"].startswith("Camera lobby is down: no frame for 4")
    assert down.body["details"]["last_error"] == "timed out" and "dock" not in json.dumps(down.body)  # never started: not watched

    cameras.write_status("lobby", worker_status(state="streaming", last_frame_ts=datetime.now(UTC).isoformat()))
    health_tick(defs, instance, cursor)
    assert receiver.events() == [("camera", "down"), ("camera", "up")]
    assert receiver.received[1].body["title"].startswith("Camera lobby is back after")


def test_the_disk_guard_tripping_and_clearing_is_notified(small_disk, instance, receiver) -> None:
    settings = Settings(home=small_disk.path / "home", disk_guard=DiskGuard(min_free_bytes=4 * 2**20), notify=NotifySettings())
    defs = build_definitions(settings)
    cursor, _ = health_tick(defs, instance, None)
    assert receiver.received == []
    small_disk.fill(leave=2 * 2**20)
    cursor, _ = health_tick(defs, instance, cursor)
    cursor, _ = health_tick(defs, instance, cursor)
    small_disk.clear()
    health_tick(defs, instance, cursor)
    assert receiver.events() == [("disk_guard", "tripped"), ("disk_guard", "cleared")]
    tripped = receiver.received[0]
    assert tripped.signature_ok and "below VIDEO_ASSETS_MIN_FREE=4.0 MB" in tripped.body["title"]
    assert tripped.body["details"]["threshold_bytes"] == 4 * 2**20 and tripped.body["details"]["free_bytes"] <= 2 * 2**20
