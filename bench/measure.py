"""Small measuring helpers shared by the benchmarks (Linux /proc)."""

from __future__ import annotations

import os


def _ticks() -> int:
    return os.sysconf(os.sysconf_names["SC_CLK_TCK"])


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (default: this one), children not included."""
    with open(f"/proc/{pid or 'self'}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _ticks()


def rss_mb(pid: int | None = None, peak: bool = False) -> float:
    key = "VmHWM:" if peak else "VmRSS:"
    with open(f"/proc/{pid or 'self'}/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


def percentiles(values: list[float]) -> dict:
    """p50/p95/p99/max in milliseconds."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000, 1)

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": round(ordered[-1] * 1000, 1)}
