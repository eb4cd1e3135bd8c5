import re

import dagster as dg
import pytest

from video_assets.ingest.keys import hash_of_key, name_of_key, readable_name, video_key

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("relative_path", "expected_name"),
    [
        ("clip.mp4", "clip.mp4"),
        ("my clip (1).mp4", "my_clip_1_.mp4"),
        ("cam 1/2026-01-01 12:00.mp4", "cam_1_2026-01-01_12_00.mp4"),
        ("..hidden..trick...mp4", "hidden.trick.mp4"),
        ("Café Überwachung.mov", "Cafe_Uberwachung.mov"),
        ("视频.mp4", "mp4"),
        ("日本", "video"),
        ("x" * 200 + ".mp4", "x" * 60),
        ("a|b,c[d].mp4", "a_b_c_d_.mp4"),
    ],
)
def test_readable_name_is_safe_ascii(relative_path: str, expected_name: str) -> None:
    assert readable_name(relative_path) == expected_name


@pytest.mark.parametrize("relative_path", ["a..b.mp4", "x\ny.mp4", "tab\there.mp4", "../../etc/passwd", "a|b.mp4"])
def test_keys_obey_dagster_rules_and_round_trip(relative_path: str, instance: dg.DagsterInstance) -> None:
    key = video_key(relative_path, SHA)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", key)
    assert ".." not in key
    assert hash_of_key(key) == SHA[:12]
    assert name_of_key(key) == readable_name(relative_path)
    instance.add_dynamic_partitions("videos", [key])  # Dagster accepts it as a partition key
    assert instance.has_dynamic_partition("videos", key)


def test_same_name_other_content_gives_another_key() -> None:
    assert video_key("clip.mp4", "0" * 64) != video_key("clip.mp4", "1" * 64)


def test_foreign_keys_have_no_hash() -> None:
    assert hash_of_key("made-by-hand") is None
    assert name_of_key("clip.mp4") is None
