"""How many cores other processes keep busy: the signal for decoding ahead of the model or in line.

Linux only (``/proc/stat``); elsewhere the probe reports nothing and callers keep their quiet-machine default.
"""

from __future__ import annotations

import os
import time

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (iowait and idle are not busy)


def _system_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot, summed over cores; None where unreadable."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    vals = [int(v) for v in fields[1:]]
    return sum(vals[i] for i in _BUSY_FIELDS if i < len(vals)) / float(ticks)


class OtherLoad:
    """Cores kept busy by other processes between two calls of :meth:`cores`.

    Machine-wide busy time from ``/proc/stat`` minus this process's own CPU time (all its threads), divided by
    the wall time in between. Steal time counts as busy: a hypervisor taking cores hurts like a neighbour.
    """

    def __init__(self):
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        busy = _system_busy_s()
        if busy is None:
            return None
        return time.perf_counter(), busy, time.process_time()

    def cores(self) -> float | None:
        """Average number of cores other processes used since the previous call (None: unknown, or too short an
        interval to tell at the clock's 10 ms resolution)."""
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None:
            return None
        wall = now[0] - last[0]
        if wall < 0.1:
            return None
        return max(0.0, ((now[1] - last[1]) - (now[2] - last[2])) / wall)
