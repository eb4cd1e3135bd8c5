"""The batch ledger's rules, transaction by transaction: grouping, leases, one poll per interval, the budget."""

from __future__ import annotations

import pytest

from video_assets.backends.batch.contract import MAX_BATCH_ID, MAX_JOB_ID
from video_assets.backends.batch.ledger import NAME, SCHEMA, BudgetExceeded, JoinRequest, LeaseLost, SqlBatchLedger

SPEC = "http://api|acme|count-people|5"
T0 = 1_800_000_000.0


@pytest.fixture
def ledger(ledger_database) -> SqlBatchLedger:
    """On SQLite (one machine) and on a real Postgres (many machines): the same rules."""
    return SqlBatchLedger(ledger_database(NAME, SCHEMA))


def request(sha: str, frames: int = 10, window_s: float = 60, capacity: int = 3, budget: int | None = None, spec: str = SPEC):
    return JoinRequest(spec, sha, f"video-{sha}", f"/videos/{sha}.mp4", f"va{sha}-v.mp4", frames, "{}", window_s, capacity, budget)


def submit(ledger: SqlBatchLedger, group_id: str, *shas: str):
    """What a driver does once the window ended: close, upload, record the submission (before posting)."""
    ledger.lead(group_id, "run-1", T0 + 60, lease_s=30)
    for sha in shas:
        ledger.mark_staged(group_id, sha)
    return ledger.begin_submission(group_id, "run-1")


def test_videos_ready_within_the_window_share_a_group_until_it_is_full(ledger) -> None:
    a = ledger.join(request("a"), T0)
    b = ledger.join(request("b"), T0 + 30)
    c = ledger.join(request("c"), T0 + 59)
    d = ledger.join(request("d"), T0 + 59.5)  # the group holds 3
    e = ledger.join(request("e"), T0 + 61)
    assert a.group_id == b.group_id == c.group_id != d.group_id
    assert e.group_id == d.group_id  # d's group opened at +59.5, so +61 is inside its window
    late = ledger.join(request("f"), T0 + 59.5 + 60)
    assert late.group_id not in (a.group_id, d.group_id)
    other_spec = ledger.join(request("g", spec="http://api|acme|other|5"), T0 + 1)
    assert other_spec.group_id != a.group_id  # another workflow never shares a job
    group = ledger.group(a.group_id)
    assert len(group.group_id) <= MAX_BATCH_ID and len(group.job_id) <= MAX_JOB_ID
    assert [m.sha256 for m in ledger.members(a.group_id)] == ["a", "b", "c"]


def test_a_video_keeps_its_group_whoever_joins_it_again(ledger) -> None:
    first = ledger.join(request("a"), T0)
    again = ledger.join(request("a"), T0 + 3600)  # a retry, a re-run, another machine: same content
    assert again.group_id == first.group_id and again.joined_at == T0


def test_only_a_due_group_is_led_and_by_one_owner_at_a_time(ledger) -> None:
    group_id = ledger.join(request("a"), T0).group_id
    assert ledger.lead(group_id, "run-1", T0 + 10, lease_s=30) is None  # the window is open
    led = ledger.lead(group_id, "run-1", T0 + 60, lease_s=30)
    assert led is not None and led.state == "closed" and led.lease_owner == "run-1"
    assert ledger.join(request("b"), T0 + 61).group_id != group_id  # closed: a new video opens another group
    assert ledger.lead(group_id, "run-2", T0 + 70, lease_s=30) is None  # leased
    assert ledger.lead(group_id, "run-1", T0 + 70, lease_s=30) is not None  # the owner keeps it
    taken = ledger.lead(group_id, "run-2", T0 + 101, lease_s=30)  # run-1 went silent past its lease
    assert taken is not None and taken.lease_owner == "run-2"
    assert not ledger.renew(group_id, "run-1", T0 + 102, 30)
    with pytest.raises(LeaseLost):
        ledger.begin_submission(group_id, "run-1")


def test_a_full_group_is_due_before_its_window_ends(ledger) -> None:
    group_id = ledger.join(request("a", capacity=2), T0).group_id
    ledger.join(request("b", capacity=2), T0 + 1)
    assert ledger.lead(group_id, "run-1", T0 + 2, lease_s=30) is not None


def test_a_submission_records_the_staged_frames_before_the_job_exists(ledger) -> None:
    group_id = ledger.join(request("a", frames=50), T0).group_id
    ledger.join(request("b", frames=30), T0 + 1)
    ledger.lead(group_id, "run-1", T0 + 60, lease_s=30)
    ledger.mark_staged(group_id, "a")
    ledger.drop(group_id, "b", "/videos/b.mp4 is not there any more")
    submitting = ledger.begin_submission(group_id, "run-1")
    assert submitting is not None and (submitting.state, submitting.frames_estimate) == ("submitting", 50)
    assert ledger.submitted_frames() == 50
    assert ledger.lead(group_id, "run-2", T0 + 61, lease_s=30) is None  # still leased: the POST is under way
    resumed = ledger.lead(group_id, "run-2", T0 + 91, lease_s=30)  # run-1 died: run-2 resolves the same job id
    assert resumed is not None and (resumed.state, resumed.job_id) == ("submitting", submitting.job_id)
    ledger.record_submitted(group_id)
    assert ledger.group(group_id).state == "submitted" and ledger.group(group_id).lease_owner is None
    assert ledger.join(request("b", frames=30), T0 + 100).group_id != group_id  # the dropped video may join anew


def test_a_group_whose_videos_all_left_starts_no_job(ledger) -> None:
    group_id = ledger.join(request("a"), T0).group_id
    ledger.drop(group_id, "a", "gone")
    assert submit(ledger, group_id) is None
    assert ledger.group(group_id).state == "empty" and ledger.submitted_frames() == 0


def test_a_refused_job_frees_its_videos_and_its_frames(ledger) -> None:
    group_id = ledger.join(request("a", frames=50), T0).group_id
    submit(ledger, group_id, "a")
    ledger.record_refused(group_id, "HTTP 402 Batch processing is not enabled")
    member = ledger.member(SPEC, "a")
    assert member is not None and (member.state, member.message) == ("refused", "HTTP 402 Batch processing is not enabled")
    assert ledger.submitted_frames() == 0
    assert ledger.join(request("a", frames=50), T0 + 100).group_id != group_id


def test_one_poll_per_interval_across_all_runs(ledger) -> None:
    group_id = ledger.join(request("a"), T0).group_id
    claims = [ledger.claim_poll(group_id, T0 + t, interval_s=10) for t in (0, 1, 5, 9.9, 10, 12, 20.5)]
    assert claims == [True, False, False, False, True, False, True]


def test_the_budget_counts_submitted_frames_and_frames_waiting_in_open_groups(ledger) -> None:
    group_id = ledger.join(request("a", frames=60, budget=100), T0).group_id
    with pytest.raises(BudgetExceeded) as refused:
        ledger.join(request("b", frames=50, budget=100), T0 + 1)
    assert (refused.value.used, refused.value.asked, refused.value.budget) == (60, 50, 100)
    ledger.join(request("c", frames=40, budget=100), T0 + 2)
    submit(ledger, group_id, "a", "c")
    assert ledger.submitted_frames() == 100
    with pytest.raises(BudgetExceeded):
        ledger.join(request("d", frames=1, budget=100), T0 + 61)


def test_force_resubmit_sets_a_submitted_video_aside_once(ledger) -> None:
    group_id = ledger.join(request("a"), T0).group_id
    submit(ledger, group_id, "a")
    ledger.record_submitted(group_id)
    ledger.set_aside(SPEC, "a", "run-9")
    moved = ledger.join(request("a"), T0 + 100)
    assert moved.group_id != group_id and moved.forced_by == "run-9" and moved.state == "waiting"
    assert ledger.group(group_id).state == "submitted"  # the first job stays on record


def test_statuses_move_a_submitted_group_to_done_or_failed_and_back(ledger) -> None:
    group_id = ledger.join(request("a"), T0).group_id
    submit(ledger, group_id, "a")
    ledger.record_submitted(group_id)
    ledger.record_status(group_id, "failed", "processing", "OOM", None)
    assert (ledger.group(group_id).state, ledger.group(group_id).message) == ("failed", "OOM")
    ledger.record_status(group_id, "running", "processing (info)", "", None)  # restarted in Roboflow
    ledger.record_status(group_id, "succeeded", "export", "Job completed", "j-export")
    group = ledger.group(group_id)
    assert (group.state, group.results_batch, group.stage) == ("done", "j-export", "export")
