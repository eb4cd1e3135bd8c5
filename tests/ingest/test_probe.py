from datetime import datetime, timezone

import pytest

from video_assets.ingest.probe import UnreadableVideoError, probe_media


def test_probe_reads_timing_and_format(samples_dir, sample, fixed_mtime) -> None:
    info = probe_media(samples_dir / "two_walkers.mp4")
    walkers = sample("two_walkers.mp4")
    assert (info.fps, info.frame_count, info.width, info.height, info.codec) == (15.0, walkers.frames, 640, 360, "h264")
    assert info.duration_s == pytest.approx(walkers.frames / walkers.fps)
    # No creation_time tag: the recording is taken to end at the file's mtime.
    assert info.recorded_at == datetime.fromtimestamp(fixed_mtime - info.duration_s, tz=timezone.utc)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty (0 bytes)"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20, "cannot be decoded as video"),
        (b"just some text, renamed to .mp4\n" * 50, "cannot be decoded as video"),
    ],
)
def test_unusable_files_get_a_message_naming_the_file_and_the_fix(tmp_path, content, message) -> None:
    path = tmp_path / "bad video.mp4"
    path.write_bytes(content)
    with pytest.raises(UnreadableVideoError) as raised:
        probe_media(path)
    assert str(path) in str(raised.value) and message in str(raised.value)
    assert "drop folder" in str(raised.value)


def test_truncated_video_is_reported(tmp_path, samples_dir) -> None:
    path = tmp_path / "cut.mp4"
    path.write_bytes((samples_dir / "two_walkers.mp4").read_bytes()[:2000])
    with pytest.raises(UnreadableVideoError, match="cut.mp4"):
        probe_media(path)
