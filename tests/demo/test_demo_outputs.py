"""The demo writes classical features in the shape `stratonet extract classical` writes, and lists every folder."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli


def _files(folder: Path) -> set[str]:
    """Relative names of what an output folder holds, less the run's own config and log."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
            and not p.name.endswith((".config.yaml", ".log"))}


def test_demo_and_cli_write_classical_features_in_the_same_shape(tmp_path):
    from stratonet.demo import pipeline as demo
    from stratonet.index import build_index
    from stratonet.runtime import make_plate
    from stratonet.core.tables import write_table

    make_plate(tmp_path / "plate", wells=2, sites=1, seed=0, size=256, plate="P", progress=False)
    index = write_table(build_index(tmp_path / "plate" / "load_data.csv", "loaddata"), tmp_path / "index.parquet")

    ctx = demo.DemoContext(out=tmp_path / "demo", synth_index=index)
    demo.stage_extract_classical(ctx)
    feats = ctx.out / "features"
    # one folder, no flat copies beside it
    assert sorted(p.name for p in feats.iterdir()) == ["classical"]
    assert ctx.features["classical"] == feats / "classical" / "site.parquet"
    assert ctx.outputs["classical features, synthetic plate (single cells, sites, wells, masks)"] == feats / "classical"

    # the CLI with the demo's feature set writes the same files
    cli = tmp_path / "cli"
    assert run_cli(["extract", "classical", index, "-o", cli, "--workers", "2", "--save-masks",
                    "--features", "areashape,intensity,location,texture,granularity,correlation,neighbors",
                    "--texture-scales", "3", "--granularity-spectrum", "8"]) == 0
    assert _files(feats / "classical") == _files(cli)
    assert {"single_cell.parquet", "site.parquet", "well.parquet", "site.manifest.json"} <= _files(cli)
    import pandas as pd

    a, b = pd.read_parquet(feats / "classical" / "site.parquet"), pd.read_parquet(cli / "site.parquet")
    assert list(a.columns) == list(b.columns) and len(a) == len(b)


def test_outputs_list_names_every_folder(tmp_path):
    from stratonet.demo.pipeline import unlisted_folders

    out = tmp_path / "demo"
    for f in ("features/deep.parquet", "features/deep.manifest.json", "features/classical/site.parquet",
              "features/classical_assay/site.parquet", "profiles/deep.parquet", "profiles/assay.parquet",
              "evaluate/classify/deep/metrics.json", "evaluate/assay/x/metrics.json", "index/a.parquet",
              "stratonet.log"):
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        (out / f).write_text("x")
    listed = {"deep": out / "features/deep.parquet", "classical": out / "features/classical",
              "assay profiles": out / "profiles/assay.parquet", "assay": out / "evaluate/assay/x",
              "index": out / "index/a.parquet"}
    extra = unlisted_folders(out, listed.values())
    assert set(extra) == {"features/classical_assay/", "profiles/", "evaluate/classify/"}
    every = [Path(p).resolve() for p in [*listed.values(), *extra.values()]]
    for d in (p for p in out.rglob("*") if p.is_dir()):
        assert any(d.resolve() == q or d.resolve() in q.parents or q in d.resolve().parents for q in every), d


def test_outputs_list_describes_every_folder(tmp_path):
    """Issue 26: a folder the stages did not list gets a description, never its own name as one."""
    from stratonet.demo.pipeline import describe_unlisted

    out = tmp_path / "demo"
    for f in ("profiles/deep.parquet", "evaluate/classify/deep/metrics.json", "synth_train/a.tif", "odd/x.txt"):
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        (out / f).write_text("x")
    outputs: dict = {}
    describe_unlisted(out, outputs)
    named = {Path(p).relative_to(out).as_posix() + "/": what for what, p in outputs.items()}
    assert named["profiles/"].startswith("well profiles") and named["synth_train/"].startswith("synthetic 96-well")
    assert named["evaluate/"].startswith("evaluation results")
    assert named["odd/"] == "other files the demo wrote"
    assert all(what.rstrip("/") != rel.rstrip("/") for rel, what in named.items())
