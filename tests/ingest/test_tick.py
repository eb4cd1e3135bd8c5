"""The sensor's decision logic on its own: stability, budgets, the watermark, duplicates."""

from pathlib import Path

from video_assets.ingest.files import DroppedFile
from video_assets.ingest.keys import video_key
from video_assets.ingest.tick import WATERMARK_MARGIN_NS, DropCursor, plan_tick

NOW = 2_000_000_000_000_000_000
OLD = NOW - 10 * WATERMARK_MARGIN_NS


def dropped(name: str, size: int = 100, ctime: int = OLD, source: str = "inbox") -> DroppedFile:
    return DroppedFile(source, name, Path("/drop") / name, size, ctime, ctime)


class HashByName:
    """A deterministic content hash: files whose names start alike have the same content."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, f: DroppedFile) -> str:
        self.calls += 1
        return f.relative_path.split("_")[0].encode().hex().ljust(64, "0")[:64]


def tick(cursor, files, existing=(), hashes=None, now=NOW, **kw):
    return plan_tick(cursor, files, hashes or HashByName(), lambda: list(existing), now_ns=now, **kw)


def test_a_file_is_taken_only_after_two_identical_sightings() -> None:
    first = tick(DropCursor(), [dropped("a.mp4", size=10)])
    assert first.settled == [] and [f.relative_path for f in first.waiting] == ["a.mp4"]
    grown = tick(first.cursor, [dropped("a.mp4", size=20)])
    assert grown.settled == []
    stable = tick(grown.cursor, [dropped("a.mp4", size=20)])
    assert [(s.outcome, s.key) for s in stable.settled] == [("new", video_key("a.mp4", HashByName()(dropped("a.mp4"))))]


def test_settled_files_cost_nothing_on_later_ticks() -> None:
    files = [dropped(f"v{i}.mp4") for i in range(500)]
    cursor = tick(tick(DropCursor(), files).cursor, files, max_settled=1000).cursor
    hashes = HashByName()
    later = tick(cursor, files, hashes=hashes)
    assert later.settled == [] and later.waiting == [] and hashes.calls == 0
    assert len(cursor.to_json()) < 200  # the cursor does not grow with the folder


def test_new_file_among_many_seen_is_the_only_one_hashed() -> None:
    files = [dropped(f"v{i}.mp4") for i in range(300)]
    cursor = tick(tick(DropCursor(), files).cursor, files, max_settled=1000).cursor
    newcomer = dropped("new.mp4", ctime=NOW - 1)
    cursor = tick(cursor, [*files, newcomer], now=NOW + 1).cursor
    hashes = HashByName()
    plan = tick(cursor, [*files, newcomer], hashes=hashes, now=NOW + 2)
    assert [s.file.relative_path for s in plan.settled] == ["new.mp4"] and hashes.calls == 1


def test_budget_defers_the_rest_without_losing_them() -> None:
    files = [dropped(f"v{i}.mp4", ctime=OLD + i) for i in range(5)]
    cursor = tick(DropCursor(), files).cursor
    plan = tick(cursor, files, max_settled=2)
    assert len(plan.settled) == 2 and len(plan.deferred) == 3
    assert plan.cursor.watermark_ns < min(f.ctime_ns for f in plan.deferred)
    rest = tick(plan.cursor, files, max_settled=10)
    assert sorted(s.file.relative_path for s in rest.settled) == ["v2.mp4", "v3.mp4", "v4.mp4"]


def test_recent_arrivals_stay_listed_until_the_watermark_passes_them() -> None:
    fresh = dropped("fresh.mp4", ctime=NOW - 1)
    plan = tick(tick(DropCursor(), [fresh]).cursor, [fresh])
    assert plan.cursor.watermark_ns < fresh.ctime_ns
    assert plan.cursor.recent == {"inbox:fresh.mp4": list(fresh.fingerprint)}
    assert plan.cursor.is_settled(fresh)
    later = tick(plan.cursor, [fresh], now=NOW + 2 * WATERMARK_MARGIN_NS)
    assert later.cursor.recent == {} and later.cursor.is_settled(fresh)


def test_duplicates_known_keys_and_non_videos() -> None:
    existing = [video_key("clipA.mp4", HashByName()(dropped("clip_")))]
    files = [dropped("clip_copy.mp4"), dropped("clip_other.mp4"), dropped("notes.txt"), dropped("b.mp4")]
    plan = tick(tick(DropCursor(), files).cursor, files, existing=existing)
    outcomes = {s.file.relative_path: (s.outcome, s.duplicate_of) for s in plan.settled}
    assert outcomes == {
        "b.mp4": ("new", None),
        "clip_copy.mp4": ("duplicate", existing[0]),
        "clip_other.mp4": ("duplicate", existing[0]),
        "notes.txt": ("not_video", None),
    }
    assert [s.key for s in plan.keys_to_run] == [video_key("b.mp4", HashByName()(dropped("b.mp4")))]


def test_cursor_round_trips_through_json() -> None:
    cursor = DropCursor(5, {"inbox:a.mp4": [1, 2, 3]}, {"inbox:b.mp4": [4, 5, 6]})
    assert DropCursor.from_json(cursor.to_json()) == cursor
    assert DropCursor.from_json(None) == DropCursor()
