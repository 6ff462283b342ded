"""Progress bars: a bar whose position is polled from work done elsewhere (Ray actors)."""

from __future__ import annotations

import time

import stratonet.core.progress as progress


def test_polled_progress_follows_the_poll_and_survives_a_failing_one(monkeypatch):
    bars = []

    def bar(disable):
        bars.append(progress.Progress(disable=True))
        return bars[-1]

    monkeypatch.setattr(progress, "_bar", bar)
    state = {"done": 0, "calls": 0, "fail": False}

    def poll():
        state["calls"] += 1
        if state["fail"]:
            raise OSError("a report vanished")
        return state["done"]

    with progress.polled_progress("work", 10, poll, interval=0.01) as show:
        state["done"] = 4
        deadline = time.monotonic() + 5
        while bars[0].tasks[0].completed != 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bars[0].tasks[0].completed == 4  # the poller thread moved the bar
        state["fail"] = True
        show()  # a failing poll leaves the bar where it was
        assert bars[0].tasks[0].completed == 4
        state["fail"], state["done"] = False, 99
        show()
        assert bars[0].tasks[0].completed == 10  # never past the total
    assert state["calls"] >= 3


def test_polled_progress_disabled_does_not_poll_in_the_background():
    calls = []
    with progress.polled_progress("work", 5, lambda: calls.append(1) or len(calls), interval=0.01,
                                  disable=True):
        time.sleep(0.1)
    assert len(calls) == 1  # only the final update on exit
