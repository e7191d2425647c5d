"""The per-job policies, as pure decisions: misfire and catch-up, overlap, retry backoff.

No database and no clock here: callers pass `now` and what they know, so each rule is
tested directly with made-up instants.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

# catch_up "all" runs at most this many missed occurrences; the rest are recorded as missed.
MAX_CATCH_UP_RUNS = 100


@dataclass(frozen=True)
class Occurrence:
    scheduled_for: datetime
    outcome: str  # "run", "catch_up" or "missed"


def plan_occurrences(
    run_times: list[datetime], *, now: datetime, grace_seconds: int, catch_up: str
) -> list[Occurrence]:
    """Decide, for the due run times of one job, which run and which are recorded as missed.

    A run time is on time if it is at most `grace_seconds` old. Late ones follow `catch_up`:
    "none" runs none of them; "once" runs the latest one; "all" runs up to 100, the latest ones.
    Every late run time that does not run is a `missed` occurrence, never dropped.

    >>> t = datetime(2026, 1, 1, 12)
    >>> [o.outcome for o in plan_occurrences([t - timedelta(minutes=5), t], now=t, grace_seconds=60, catch_up="once")]
    ['catch_up', 'run']
    """
    grace = timedelta(seconds=grace_seconds)
    late = [t for t in run_times if now - t > grace]
    on_time = [t for t in run_times if now - t <= grace]
    if catch_up == "all":
        caught = set(late[-MAX_CATCH_UP_RUNS:])
    elif catch_up == "once" and late and not on_time:
        # One run stands for all missed ones; if an on-time run is due anyway, it is that run.
        caught = {late[-1]}
    else:
        caught = set()
    plan = [Occurrence(t, "catch_up" if t in caught else "missed") for t in late]
    plan += [Occurrence(t, "run") for t in on_time]
    return plan


def overlap_decision(policy: str, *, running: int, waiting: int, max_instances: int) -> str:
    """What to do with a run that may start now, given the job's runs in flight.

    Returns "start", "wait" (stay scheduled until a slot frees), "skip", or "replace"
    (cancel the running ones, then start).
    """
    if running == 0:
        return "start"
    if policy == "allow":
        return "start" if running < max_instances else "skip"
    if policy == "queue_one":
        return "wait" if waiting == 0 else "skip"
    if policy == "replace":
        return "replace"
    return "skip"


def retry_delay(*, attempt: int, backoff: int, cap: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: backoff × 2^(attempt-1), capped, then ±20 %.

    `attempt` is the attempt that just failed (1 for the first run). Jitter spreads retries
    of many jobs that failed together (a database outage) so they do not all return at once.
    """
    base = min(backoff * 2 ** max(attempt - 1, 0), cap)
    spread = (rng or random).uniform(0.8, 1.2)
    return timedelta(seconds=max(min(base * spread, cap), 0))


def should_retry(*, attempt: int, max_retries: int) -> bool:
    """Attempt 1 is the first run; with max_retries=3 attempts 2, 3 and 4 are retries."""
    return attempt <= max_retries
