"""The CLI skeleton: help everywhere, config files validated, errors as one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import run_cli

SUBCOMMANDS = [
    ["weights"],
    ["synth"], ["index"], ["extract"], ["extract", "deep"], ["extract", "classical"], ["extract", "pixel"],
    ["profile"], ["evaluate"], ["evaluate", "classify"], ["evaluate", "retrieval"], ["evaluate", "embed"],
    ["evaluate", "compare"], ["report"], ["train"], ["train", "classifier"], ["train", "treatment"],
    ["weights", "import"], ["demo"],
]


@pytest.mark.parametrize("cmd", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(cmd, capsys):
    assert run_cli(cmd + ["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_config_unknown_option_is_one_line_error(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("synth:\n  wellz: 3\n")
    assert run_cli(["--config", str(cfg), "synth", str(tmp_path / "p")]) != 0
    err = capsys.readouterr().err
    assert "unknown option 'wellz'" in err and "wells" in err
    assert "Traceback" not in err


def test_config_bad_type_is_error(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("synth:\n  wells: many\n")
    assert run_cli(["--config", str(cfg), "synth", str(tmp_path / "p")]) != 0
    assert "bad value for 'wells'" in capsys.readouterr().err


def test_config_missing_file(tmp_path, capsys):
    assert run_cli(["--config", str(tmp_path / "nope.yaml"), "synth", str(tmp_path)]) != 0
    assert "nope.yaml: config file not found" in capsys.readouterr().err


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "stratonet", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "stratonet" in r.stdout
