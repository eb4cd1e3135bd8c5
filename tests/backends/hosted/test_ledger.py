"""The hosted job ledger on SQLite (one machine) and on a real Postgres (many machines): one submission
per video whichever machine asks, the budget checked in the same transaction."""

from __future__ import annotations

import threading

import pytest

from video_assets.backends.hosted.ledger import NAME, SCHEMA, BudgetExceeded, JobKey, JobLedger

KEY = JobKey("http://api.test", "ab" * 32, "model:people/3", 5)


def test_two_machines_asking_at_once_reserve_one_submission(ledger_database) -> None:
    JobLedger(ledger_database(NAME, SCHEMA)).record_upload(KEY, "walkers-abc", "https://v/1", "https://u/1")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def machine(name: str) -> None:
        ledger = JobLedger(ledger_database(NAME, SCHEMA))  # its own connections, as on another machine
        start.wait()
        try:
            ledger.reserve_submission(KEY, 100, name, budget_frames=None)
            outcomes.append("reserved")
        except RuntimeError:
            outcomes.append("refused")

    threads = [threading.Thread(target=machine, args=(f"machine-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ledger = JobLedger(ledger_database(NAME, SCHEMA))
    assert sorted(outcomes) == ["refused", "reserved"]
    assert ledger.get(KEY).state == "submitting" and ledger.submissions(KEY) == [None]
    ledger.record_job(KEY, "job-1")
    assert (ledger.get(KEY).state, ledger.get(KEY).job_id, ledger.submissions(KEY)) == ("submitted", "job-1", ["job-1"])
    assert ledger.submitted_frames() == 100 and isinstance(ledger.submitted_frames(), int)


def test_the_budget_counts_every_submission_in_the_same_transaction(ledger_database) -> None:
    ledger = JobLedger(ledger_database(NAME, SCHEMA))
    other = JobKey(KEY.api_url, "cd" * 32, KEY.target, KEY.fps)
    for key in (KEY, other):
        ledger.record_upload(key, key.sha256[:8], "https://v", "https://u")
    ledger.reserve_submission(KEY, 70, "run-1", budget_frames=100)
    with pytest.raises(BudgetExceeded) as refused:
        ledger.reserve_submission(other, 40, "run-2", budget_frames=100)
    assert (refused.value.used, refused.value.asked, refused.value.budget) == (70, 40, 100)
    assert ledger.get(other).state == "uploaded"  # nothing reserved for it
