"""Machine-load bookkeeping for benchmarks: loadavg and other processes' CPU use."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass


def _busy_seconds() -> float | None:
    """System-wide busy CPU seconds from /proc/stat (None where unavailable)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + (ticks[7] if len(ticks) > 7 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class LoadMeter:
    """Measures, over a block of work, this process's and other processes' CPU per wall second."""

    def __enter__(self) -> LoadMeter:
        self.wall0, self.own0, self.busy0 = time.perf_counter(), _own_seconds(), _busy_seconds()
        self.loadavg_before = os.getloadavg()[0]
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self.wall0
        own = _own_seconds() - self.own0
        busy = _busy_seconds()
        self.own_cpu_per_wall = own / wall if wall else 0.0
        self.other_cpu_per_wall = (busy - self.busy0 - own) / wall if busy is not None and wall else float("nan")
        self.loadavg_after = os.getloadavg()[0]

    def describe(self) -> str:
        return (f"own CPU/wall {self.own_cpu_per_wall:.2f}, other processes CPU/wall "
                f"{self.other_cpu_per_wall:.2f}, loadavg {self.loadavg_before:.2f}->{self.loadavg_after:.2f}")
