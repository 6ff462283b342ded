"""The demo's profile, evaluate and report stages on hand-made site-level feature tables."""

from __future__ import annotations

import json

import pandas as pd

import report_fixtures as rf
from stratonet.demo.pipeline import DemoContext, stage_evaluate, stage_profile, stage_report


def test_demo_stages_end_to_end(tmp_path):
    sites = rf.demo_plate_sites()
    # one MoA in a single well (as in the synthetic plate): classified without it, and the config says so
    sites.loc[sites["Metadata_Well"] == "D06", ["Metadata_moa", "Metadata_pert_iname", "Metadata_broad_sample"]] = "rare"
    ctx = DemoContext(out=tmp_path / "demo")
    feats = tmp_path / "demo" / "features"
    ctx.features["deep"] = rf.write(rf.deep_table(sites, {"low": 0.3, "high": 2.0}, per_tap=6, seed=1),
                                    feats / "deep.parquet", feature_set="deep", model="stratonet50",
                                    weights="untrained (seed 0)")
    # the demo writes classical features as `extract classical` does: a folder, profiled from its site.parquet
    ctx.features["classical"] = rf.write(rf.classical_table(sites, n=20, informative=8),
                                         feats / "classical" / "site.parquet", feature_set="classical")
    pixel = rf.features_for(sites, [f"DNA_px_{i:04d}" for i in range(16)], {}, seed=5)
    ctx.features["pixel"] = rf.write(pixel, feats / "pixel.parquet", feature_set="pixel")
    # a single real field of view (no controls): listed, not profiled
    real = rf.deep_table(sites.head(1).assign(Metadata_Plate="BR00117006", Metadata_Well="A01"), {"high": 1.0},
                         per_tap=6)
    ctx.features["deep_real_fov"] = rf.write(real, feats / "deep_real_fov.parquet", feature_set="deep",
                                             weights="untrained (seed 0)")

    stage_profile(ctx)
    assert set(ctx.profiles) == {"deep", "classical", "pixel"}
    prof = pd.read_parquet(ctx.profiles["deep"])
    assert len(prof) == 24  # aggregated to wells
    dmso = prof[prof["Metadata_control_type"] == "negcon"]
    feat = [c for c in prof.columns if not c.startswith("Metadata_")]
    assert (dmso[feat].median().abs() < 1e-6).all()  # MAD-robustized against DMSO: control median 0

    stage_evaluate(ctx)
    ev = ctx.out / "evaluate"
    for fs in ("deep", "classical", "pixel"):
        m = json.loads((ev / "classify" / fs / "metrics.json").read_text())
        assert set(m["classifiers"]) == {"svm", "rf", "mlp", "logreg"}
        assert "rare" not in m["classes"]
        assert (ev / "retrieval" / fs / "metrics.json").exists()
        assert (ev / "embed" / fs / "umap.png").exists()
    assert (ev / "compare" / "deep_vs_classical" / "correlation.csv").exists()
    taps = pd.read_csv(ev / "taps" / "stratonet50" / "tap_selection.csv").set_index("tap")
    assert taps.loc["high", "mAP"] > taps.loc["low", "mAP"]
    cfg = (ctx.out / "demo_evaluate.config.yaml").read_text()
    assert "excluded_classes" in cfg and "- rare" in cfg
    # signal is in deep/classical, none in pixel: the classifiers must see the difference
    f1 = {fs: json.loads((ev / "classify" / fs / "metrics.json").read_text())["classifiers"]["logreg"]["macro_f1"]
          for fs in ("deep", "pixel")}
    assert f1["deep"] > f1["pixel"]

    stage_report(ctx)
    html = ctx.report.read_text()
    assert ctx.outputs["report (one self-contained HTML file)"] == ctx.report
    assert 'id="untrained-warning"' in html and "demo settings" in html
    assert "features/deep_real_fov.parquet" in html
    assert "features/classical/site.parquet" in html  # the classical folder's site table is in the overview
    metrics = json.loads((ctx.report.parent / "metrics.json").read_text())
    assert metrics["sections"]["classifiers"] == "ok" and metrics["sections"]["training"] == "not run"
    assert set(metrics["classify"]) == {"deep", "classical", "pixel"}
