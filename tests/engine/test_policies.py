"""The per-job policies as pure decisions: misfire and catch-up, overlap, retry backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from scheduler_app.engine.policies import (
    MAX_CATCH_UP_RUNS,
    Occurrence,
    overlap_decision,
    plan_occurrences,
    retry_delay,
    should_retry,
)

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def minutes_before(t: datetime, *counts: int) -> list[datetime]:
    return [t - timedelta(minutes=n) for n in counts]


def outcomes(plan: list[Occurrence]) -> list[str]:
    return [occurrence.outcome for occurrence in plan]


class FixedSpread(random.Random):
    """A random source whose jitter is always `spread` (1.0 = none)."""

    def __init__(self, spread: float) -> None:
        super().__init__(0)
        self.spread = spread

    def uniform(self, a: float, b: float) -> float:
        return self.spread


# Misfire and catch-up ---------------------------------------------------------------


def test_it_runs_an_occurrence_that_is_on_time():
    plan = plan_occurrences([NOON], now=NOON + timedelta(seconds=2), grace_seconds=60, catch_up="none")
    assert plan == [Occurrence(NOON, "run")]


def test_it_runs_an_occurrence_that_is_late_but_within_the_grace_time():
    plan = plan_occurrences([NOON], now=NOON + timedelta(seconds=60), grace_seconds=60, catch_up="none")
    assert plan == [Occurrence(NOON, "run")]


def test_it_runs_an_occurrence_due_a_moment_from_now():
    # The scheduling pass looks ahead: a run time just after `now` is on time.
    plan = plan_occurrences([NOON], now=NOON - timedelta(milliseconds=300), grace_seconds=60, catch_up="none")
    assert plan == [Occurrence(NOON, "run")]


def test_it_records_an_occurrence_past_the_grace_time_as_missed_under_catch_up_none():
    plan = plan_occurrences([NOON], now=NOON + timedelta(seconds=61), grace_seconds=60, catch_up="none")
    assert plan == [Occurrence(NOON, "missed")]


def test_it_runs_only_the_latest_late_occurrence_under_catch_up_once():
    late = minutes_before(NOON, 30, 20, 10)
    plan = plan_occurrences(late, now=NOON, grace_seconds=60, catch_up="once")
    assert outcomes(plan) == ["missed", "missed", "catch_up"]
    assert plan[-1].scheduled_for == late[-1]


def test_it_catches_up_nothing_under_catch_up_once_when_an_on_time_run_is_due():
    run_times = [*minutes_before(NOON, 20, 10), NOON]
    plan = plan_occurrences(run_times, now=NOON, grace_seconds=60, catch_up="once")
    assert outcomes(plan) == ["missed", "missed", "run"]


def test_it_runs_every_late_occurrence_under_catch_up_all():
    late = minutes_before(NOON, 30, 20, 10)
    plan = plan_occurrences(late, now=NOON, grace_seconds=60, catch_up="all")
    assert outcomes(plan) == ["catch_up"] * 3


def test_it_catches_up_at_most_the_latest_100_under_catch_up_all():
    late = minutes_before(NOON, *range(150, 0, -1))
    plan = plan_occurrences(late, now=NOON, grace_seconds=0, catch_up="all")
    assert MAX_CATCH_UP_RUNS == 100
    assert outcomes(plan) == ["missed"] * 50 + ["catch_up"] * 100
    assert [o.scheduled_for for o in plan if o.outcome == "catch_up"] == late[50:]


@pytest.mark.parametrize("catch_up", ["none", "once", "all"])
def test_it_accounts_for_every_run_time_exactly_once(catch_up):
    run_times = [*minutes_before(NOON, *range(120, 0, -1)), NOON]
    plan = plan_occurrences(run_times, now=NOON, grace_seconds=30, catch_up=catch_up)
    assert sorted(o.scheduled_for for o in plan) == run_times
    assert all(o.outcome in ("run", "catch_up", "missed") for o in plan)


@pytest.mark.parametrize("catch_up", ["none", "once", "all"])
def test_it_records_every_late_occurrence_that_does_not_run_as_missed(catch_up):
    late = minutes_before(NOON, *range(120, 0, -1))
    plan = plan_occurrences(late, now=NOON, grace_seconds=30, catch_up=catch_up)
    caught = {"none": 0, "once": 1, "all": 100}[catch_up]
    assert outcomes(plan).count("catch_up") == caught
    assert outcomes(plan).count("missed") == len(late) - caught


# Overlap ----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["skip", "queue_one", "allow", "replace"])
def test_it_starts_a_run_when_none_is_running(policy):
    assert overlap_decision(policy, running=0, waiting=0, max_instances=1) == "start"


def test_it_skips_a_run_while_one_is_running_under_skip():
    assert overlap_decision("skip", running=1, waiting=0, max_instances=3) == "skip"


def test_it_starts_runs_up_to_max_instances_under_allow():
    assert overlap_decision("allow", running=2, waiting=0, max_instances=3) == "start"


def test_it_skips_a_run_beyond_max_instances_under_allow():
    assert overlap_decision("allow", running=3, waiting=0, max_instances=3) == "skip"


def test_it_queues_one_run_behind_the_running_one_under_queue_one():
    assert overlap_decision("queue_one", running=1, waiting=0, max_instances=1) == "wait"


def test_it_skips_a_second_waiting_run_under_queue_one():
    assert overlap_decision("queue_one", running=1, waiting=1, max_instances=1) == "skip"


def test_it_replaces_the_running_one_under_replace():
    assert overlap_decision("replace", running=1, waiting=0, max_instances=1) == "replace"


# Retries ----------------------------------------------------------------------------


def test_it_waits_the_backoff_before_the_first_retry():
    assert retry_delay(attempt=1, backoff=30, cap=3600, rng=FixedSpread(1.0)) == timedelta(seconds=30)


def test_it_doubles_the_wait_for_each_attempt():
    delays = [retry_delay(attempt=n, backoff=30, cap=3600, rng=FixedSpread(1.0)) for n in (1, 2, 3, 4)]
    assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240)]


def test_it_caps_the_wait():
    assert retry_delay(attempt=20, backoff=30, cap=3600, rng=FixedSpread(1.0)) == timedelta(seconds=3600)


def test_it_keeps_the_cap_even_with_upward_jitter():
    assert retry_delay(attempt=20, backoff=30, cap=3600, rng=FixedSpread(1.2)) == timedelta(seconds=3600)


def test_it_jitters_the_wait_by_at_most_20_percent():
    rng = random.Random(1234)
    delays = [retry_delay(attempt=3, backoff=30, cap=3600, rng=rng).total_seconds() for _ in range(500)]
    assert all(96 <= d <= 144 for d in delays)
    assert min(delays) < 100 and max(delays) > 140  # it does spread


def test_it_gives_the_same_waits_for_the_same_seed():
    first = [retry_delay(attempt=2, backoff=30, cap=3600, rng=random.Random(7)) for _ in range(3)]
    again = [retry_delay(attempt=2, backoff=30, cap=3600, rng=random.Random(7)) for _ in range(3)]
    assert first == again


def test_it_retries_while_attempts_are_within_max_retries():
    assert [should_retry(attempt=n, max_retries=3) for n in (1, 2, 3, 4)] == [True, True, True, False]


def test_it_never_retries_a_job_without_retries():
    assert should_retry(attempt=1, max_retries=0) is False
