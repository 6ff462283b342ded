"""Golden run: the same small pipeline on two trees, and a comparison of every table, metric and CLI option.

Usage::

    PYTHONPATH=src python benchmarks/golden/golden.py run OUTDIR
    python benchmarks/golden/golden.py compare OUTDIR_A OUTDIR_B

``run`` drives the installed CLI only (``python -m stratonet ...``), so it runs unchanged on a tree whose modules
have moved. It writes, under OUTDIR: a small synthetic plate and the bundled real JUMP field of view (copied into
OUTDIR so that no path points into the source tree), their indexes, deep features (untrained ``stratonet18``,
``--seed 0``, 64 px input, fp32, CPU: every option that a changed default could change is spelled out), classical
and pixel features, profiles (explicit options), ``evaluate classify / retrieval`` on the synthetic plate's
profiles and ``evaluate assay`` on the real BBBC013 well table in tests/data, plus ``cli.txt``: every command and
option of the CLI (names, types, defaults, help) from click's own tree.

``compare`` reads both folders and checks every table (same columns, same rows, ``DataFrame.equals``, and max abs
difference 0 for floats) and every JSON file (volatile keys such as times, hosts and versions left out; OUTDIR
replaced by a placeholder), and the CLI snapshot line by line. It exits 1 and lists what differs, else 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BBBC013_WELLS = REPO / "tests" / "data" / "bbbc013_classical_wells.parquet"

DEEP = ["--model", "stratonet18", "--seed", "0", "--input-size", "64", "--mode", "whole", "--batch-size", "8",
        "--workers", "1", "--threads", "1", "--device", "cpu", "--precision", "fp32", "--no-compile",
        "--scaling", "image", "--normalize", "imagenet", "--no-fuse-bn", "--engine", "local", "--overwrite"]
CLASSICAL = ["--features", "areashape,intensity,texture,correlation", "-j", "1", "--texture-scales", "3",
             "--dna-channel", "DNA", "--segmentation", "classic", "--overwrite", "--engine", "local"]
PIXEL = ["--size", "16", "--scaling", "image", "--seed", "0", "--overwrite", "--engine", "local"]
PROFILE = ["--aggregate", "well", "--operation", "median", "--normalize", "mad_robustize", "--by-plate",
           "--reference", "negcon", "--select", "variance_threshold,drop_na_columns", "--na-cutoff", "0.05",
           "--zero-mad", "drop", "--no-spherize", "--in-memory"]
CLASSIFY = ["--label", "Metadata_pert_iname", "--exclude-class", "CX-5461", "--classifiers", "logreg,rf", "--test-size", "0.5", "--cv", "0",
            "--rf-trees", "20", "--permutation-features", "0", "--seed", "0", "--n-jobs", "1", "--impute", "median"]
RETRIEVAL = ["--label", "Metadata_pert_iname", "--metric", "cosine", "--null-size", "200", "--seed", "0",
             "--impute", "median"]
ASSAY = ["--readout", "diff,feature", "--feature", "Cells_Intensity_MeanIntensity_GFP", "--control-column",
         "Metadata_control_type", "--negcon", "negcon", "--poscon", "poscon", "--compound-column",
         "Metadata_compound", "--dose-column", "Metadata_dose_index", "--dose-scale", "linear", "--n-boot", "20",
         "--no-map", "--seed", "0"]

VOLATILE = re.compile(r"(time|date|elapsed|second|_s$|per_s|host|pid|version|created|started|finished|duration|"
                      r"python|torch|platform|git|commit|cpu|load|rate|memory|threads|workers|machine|user|"
                      r"command|argv|log|resources|core_s|mem_pct|rss_gb|peak)", re.I)
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # object addresses in reprs


def sn(out: Path, *args: str, log: list, ok: tuple[int, ...] = (0,)) -> None:
    """Run ``python -m stratonet ARGS`` with OUT as working directory; stop on an exit code not in ``ok``."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="110", STRATONET_NO_BROWSER="1")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "stratonet", *args], cwd=out, env=env, capture_output=True, text=True)
    log.append(f"$ stratonet {' '.join(args)}  [rc {p.returncode}, {time.perf_counter() - t0:.1f} s]")
    if p.returncode not in ok:
        sys.exit(f"golden: failed: stratonet {' '.join(args)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")


def cli_snapshot() -> str:
    """Every command and option of the CLI as text, from click's command tree."""
    import click

    from stratonet.cli import cli

    lines: list[str] = []

    def walk(cmd: click.Command, path: str) -> None:
        lines.append(f"COMMAND {path}")
        for p in cmd.params:
            default = p.default if not callable(p.default) else "<callable>"
            lines.append(f"  {type(p).__name__} {p.name} opts={p.opts + p.secondary_opts} "
                         f"type={ADDRESS.sub('', repr(p.type))} "
                         f"default={default!r} multiple={p.multiple} required={p.required}")
            lines.append(f"    help={getattr(p, 'help', None)!r}")
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.commands):
                walk(cmd.commands[name], f"{path} {name}")

    walk(cli, "stratonet")
    return "\n".join(lines) + "\n"


def run(out: Path) -> None:
    """Write the golden outputs under OUT."""
    from importlib import resources

    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log: list[str] = []
    t0 = time.perf_counter()
    (out / "cli.txt").write_text(cli_snapshot())
    shutil.copytree(Path(str(resources.files("stratonet") / "data" / "jump_fov")), out / "jump_fov")
    sn(out, "synth", "synth", "--wells", "24", "--sites", "1", "--size", "256", "--seed", "0", "--plate", "GOLD",
       "--workers", "1", log=log)
    sn(out, "index", "synth/load_data.csv", "-o", "index/synth.parquet", "--layout", "loaddata", log=log)
    sn(out, "index", "jump_fov", "-o", "index/real.parquet", "--layout", "phenix", "--plate", "BR00117006",
       "--channel-map", "2=AGP,3=RNA,5=DNA", log=log)
    for name in ("synth", "real"):
        sn(out, "extract", "deep", f"index/{name}.parquet", "-o", f"features/deep_{name}.parquet", *DEEP, log=log)
        sn(out, "extract", "classical", f"index/{name}.parquet", "-o", f"features/classical_{name}", *CLASSICAL,
           log=log)
        sn(out, "extract", "pixel", f"index/{name}.parquet", "-o", f"features/pixel_{name}.parquet", *PIXEL, log=log)
    for fs, src in (("deep", "features/deep_synth.parquet"), ("classical", "features/classical_synth/site.parquet"),
                    ("pixel", "features/pixel_synth.parquet")):
        sn(out, "profile", src, "-o", f"profiles/{fs}.parquet", *PROFILE, log=log)
        sn(out, "evaluate", "classify", f"profiles/{fs}.parquet", "-o", "evaluate", "--name", fs, *CLASSIFY, log=log)
        # exit 2 when the small plate leaves every metric unscored (it writes its tables first): compared all the same
        sn(out, "evaluate", "retrieval", f"profiles/{fs}.parquet", "-o", "evaluate", "--name", fs, *RETRIEVAL,
           log=log, ok=(0, 2))
    shutil.copy(BBBC013_WELLS, out / "bbbc013_wells.parquet")
    sn(out, "evaluate", "assay", "bbbc013_wells.parquet", "-o", "evaluate", "--name", "bbbc013", *ASSAY, log=log)
    log.append(f"total {time.perf_counter() - t0:.1f} s")
    (out / "golden.log").write_text("\n".join(log) + "\n")
    print("\n".join(log))


# --- compare ------------------------------------------------------------------------------------------------------

def _strip(obj, root: str):
    """JSON value with volatile keys removed and the run folder replaced by a placeholder."""
    if isinstance(obj, dict):
        return {k: _strip(v, root) for k, v in obj.items() if not VOLATILE.search(str(k))}
    if isinstance(obj, list):
        return [_strip(v, root) for v in obj]
    if isinstance(obj, str):
        return obj.replace(root, "<OUT>")
    return obj


def _table(path: Path):
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def compare_tables(a: Path, b: Path, root_a: str, root_b: str) -> str | None:
    """None when the two tables are identical (OUT paths aside), else a one-line reason."""
    import numpy as np
    import pandas as pd

    x, y = _table(a), _table(b)
    for df, root in ((x, root_a), (y, root_b)):
        for c in df.columns:
            if df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype):
                df[c] = df[c].map(lambda v, r=root: v.replace(r, "<OUT>") if isinstance(v, str) else v)
    if list(x.columns) != list(y.columns):
        return f"columns differ ({len(x.columns)} vs {len(y.columns)}; first extra: {sorted(set(x.columns) ^ set(y.columns))[:3]})"
    if x.shape != y.shape:
        return f"shape {x.shape} vs {y.shape}"
    if x.equals(y):
        return None
    num = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c].dtype) and pd.api.types.is_numeric_dtype(y[c].dtype)]
    diff = max((float(np.nanmax(np.abs(x[c].to_numpy(float) - y[c].to_numpy(float))) or 0.0) for c in num
                if len(x)), default=0.0)
    other = [c for c in x.columns if c not in num and not x[c].equals(y[c])]
    return f"not equal: max abs diff {diff:g} over numeric columns; differing non-numeric columns {other[:5]}"


def compare(a: Path, b: Path) -> int:
    """Print every difference between two golden folders; 1 if any, else 0."""
    a, b = a.resolve(), b.resolve()
    problems: list[str] = []
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    skip = {".log", ".lock", ".tiff", ".tif", ".png", ".html", ".txt", ".yaml"}
    for rel in sorted(files_a ^ files_b):
        if rel.suffix not in skip:
            problems.append(f"only in {'A' if rel in files_a else 'B'}: {rel}")
    n_tables = n_json = 0
    for rel in sorted(files_a & files_b):
        pa, pb = a / rel, b / rel
        if rel.suffix in (".parquet", ".csv") or rel.name.endswith(".csv.gz"):
            n_tables += 1
            why = compare_tables(pa, pb, str(a), str(b))
            if why:
                problems.append(f"table {rel}: {why}")
        elif rel.suffix == ".json":
            n_json += 1
            ja, jb = _strip(json.loads(pa.read_text()), str(a)), _strip(json.loads(pb.read_text()), str(b))
            if ja != jb:
                keys = [k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k)] if isinstance(ja, dict) else []
                problems.append(f"json {rel}: differs (keys {sorted(keys)[:6]})")
    ca, cb = ([ADDRESS.sub("", ln) for ln in (d / "cli.txt").read_text().splitlines()] for d in (a, b))
    if ca != cb:
        import difflib

        d = [ln for ln in difflib.unified_diff(ca, cb, "A/cli.txt", "B/cli.txt", lineterm="", n=0)]
        problems.append("CLI snapshot differs:\n" + "\n".join(d[:60]))
    print(f"compared {n_tables} tables, {n_json} JSON files, {len(ca)} CLI lines")
    for p in problems:
        print(" ", p)
    print("IDENTICAL" if not problems else f"{len(problems)} DIFFERENCE(S)")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "run":
        run(Path(argv[1]))
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
