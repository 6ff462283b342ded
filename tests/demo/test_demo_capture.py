"""Issue 10: what `make demo` printed on an 80-column terminal, captured, has no library warning and no wrap inside
a word or a path.

The capture is ``tests/data/demo_output_80col.txt``: the screen of a tmux pane 80 columns wide after ``make demo``
(``tmux capture-pane -p -S -``), so each line is what a user saw, cut where the terminal cut it. Regenerate it
after a change to the demo's output with the commands in tests/data/README.md. The live check of the same rules on
a CLI command runs in tests/e2e/test_correctness_output.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CAPTURE = Path(__file__).parents[1] / "data" / "demo_output_80col.txt"
# a library warning as Python prints it ("UserWarning: ..."), not the tool's own count of them
WARNINGS = re.compile(r"\w+Warning: |warnings\.warn|Traceback \(most recent call last\)")


@pytest.fixture(scope="module")
def lines() -> list[str]:
    if not CAPTURE.exists():
        pytest.fail(f"{CAPTURE} is missing: capture `make demo` as tests/data/README.md says")
    text = CAPTURE.read_text()
    assert "DEMO_EXIT=0" in text, "the captured demo did not exit 0"
    return text.splitlines()


def test_demo_capture_has_no_library_warning(lines):
    hits = [ln for ln in lines if WARNINGS.search(ln)]
    assert not hits, hits[:5]


def test_demo_capture_has_no_wrap_inside_a_word(lines):
    """A line the terminal cut (80 columns) must end between words: a full line ending in a letter followed by a
    line starting with one is a word split in two, and a full line followed by one starting with "/" a path.
    (A full progress-bar line ends in a digit of its clock.)"""
    cuts = [(a, b) for a, b in zip(lines, lines[1:])
            if len(a) >= 80 and ((a[79:80].isalpha() and b[:1].isalpha()) or b.startswith("/"))]
    assert not cuts, cuts[:3]


def test_demo_capture_reports_every_stage(lines):
    text = "\n".join(lines)
    for word in ("index", "deep", "classical", "profile", "report"):
        assert word in text
