"""The HTML report: contract outputs gathered, sections present or 'not run', untrained banner, offline page."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli
from stratonet.report import SECTIONS, build_report
from stratonet.report.browser import check_page

SECTION_IDS = [sid for sid, _ in SECTIONS]
CLASSIFIERS = {"svm": (0.81, 0.78), "rf": (0.74, 0.70)}  # accuracy, macro F1


def _png(path, seed=0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.imshow(np.random.default_rng(seed).random((4, 4)))
    fig.savefig(path)
    plt.close(fig)


def _json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def make_run(root, untrained=True):
    """A run folder laid out per the output contract, with known numbers."""
    weights = "untrained (seed 7)" if untrained else "stratonet50-imagenet"
    for fs, prov in (("deep", {"feature_set": "deep", "model": "stratonet50", "weights": weights}),
                     ("classical", {"feature_set": "classical"})):
        d = root / "evaluate" / "classify" / fs
        clfs = {c: {"accuracy": a - (0.1 if fs == "classical" else 0), "macro_f1": f, "macro_precision": f,
                    "macro_recall": f, "weighted_f1": f, "balanced_test": {"accuracy": a, "macro_f1": f},
                    "cv": {"accuracy": {"mean": a, "sd": 0.02}, "macro_f1": {"mean": f, "sd": 0.03}}}
                for c, (a, f) in CLASSIFIERS.items()}
        _json(d / "metrics.json", {"feature_set": fs, "provenance": prov, "label": "Metadata_moa",
                                   "classifiers": clfs})
        for c in CLASSIFIERS:
            _png(d / f"confusion_{c}.png")
        _json(root / "evaluate" / "retrieval" / fs / "metrics.json", {
            "feature_set": fs, "provenance": prov, "map_activity": {"mean_map": 0.61, "fraction_retrieved": 0.5},
            "map_consistency": {"mean_map": 0.42, "fraction_retrieved": 0.25}, "nsc_accuracy": 0.875,
            "nscb_accuracy": 0.8125})
        e = root / "evaluate" / "embed" / fs
        e.mkdir(parents=True)
        pd.DataFrame({"component": [1, 2], "explained": [0.7, 0.3], "cumulative": [0.7, 1.0]}).to_csv(
            e / "pca_variance.csv", index=False)
        _png(e / "pca_variance.png", 1)
        _png(e / "umap.png", 2)
        _json(e / "metrics.json", {"feature_set": fs, "provenance": prov, "n_profiles": 24})
    c = root / "evaluate" / "compare" / "deep_vs_classical"
    c.mkdir(parents=True)
    pd.DataFrame([[0.5]], index=["a"], columns=["b"]).to_csv(c / "correlation.csv")
    _png(c / "correlation.png", 3)
    tp = root / "evaluate" / "taps" / "stratonet50"
    tp.mkdir(parents=True)
    pd.DataFrame({"tap": ["low", "high"], "accuracy": [0.6, 0.9], "accuracy_sd": [0.1, 0.05],
                  "mAP": [0.4, 0.8]}).to_csv(tp / "tap_selection.csv", index=False)
    _png(tp / "tap_selection.png", 6)
    _json(tp / "metrics.json", {"model": "stratonet50", "comparison": "poscon vs negcon",
                                "provenance": {"weights": weights}})
    a = root / "evaluate" / "assay" / "classical"  # evaluate assay outputs (see test_assay for the real thing)
    _json(a / "metrics.json", {"feature_set": "classical", "primary_readout": "diff", "fdr": 0.05,
                               "p_method": "empirical", "warnings": [], "plates": {"P1": {
                                   "n_pos": 8, "n_neg": 16, "best_feature": {"feature": "Cells_F0", "z_prime": 0.6},
                                   "hits": {"n_hits": 1, "n_tested": 10},
                                   "readouts": {"diff": {"n_pos": 8, "n_neg": 16, "z_prime": 0.55,
                                                         "z_prime_ci95": [0.4, 0.7], "robust_z_prime": 0.6}}}}})
    pd.DataFrame({"plate": ["P1"], "Metadata_Well": ["A03"], "role": ["sample"], "activity": [4.0],
                  "q_value": [0.01], "hit": [True]}).to_csv(a / "hits.csv", index=False)
    _png(a / "control_distributions.png", 7)
    _png(a / "dose_curves.png", 8)
    t = root / "train" / "treatment_cnn"
    t.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.2, 0.9], "train_acc": [0.4, 0.6], "val_loss": [1.3, 1.0],
                  "val_acc": [0.35, 0.55]}).to_csv(t / "epochs.csv", index=False)
    _json(t / "metrics.json", {"model": "cnn", "provenance": {}, "accuracy": 0.55, "macro_f1": 0.5,
                               "majority_baseline": 0.25, "collapsed": False})
    _png(t / "confusion.png", 4)
    _png(t / "curves.png", 5)
    _json(root / "features" / "deep.parquet.manifest.json", {
        "config": {"model": "stratonet50"}, "model_card": {"architecture": "stratonet50", "weights": weights},
        "device": {"device": "cpu"}, "resources": {"wall_s": 12.5, "cpu_pct_avg": 88.0, "cpu_pct_max": 99.0,
                                                   "mem_pct_avg": 30.0, "mem_pct_max": 35.0},
        "throughput": {"channel_images_per_s": 41.2}, "n_sites": 48, "errors": []})
    (root / "extract_deep.config.yaml").write_text(yaml.safe_dump({"command": "stratonet extract deep",
                                                                   "options": {"batch_size": 16}}))
    return root


def test_report_gathers_everything(tmp_path):
    run = make_run(tmp_path / "run")
    out = build_report(run)
    assert out == run / "report" / "report.html"
    html = out.read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html, sid
    assert 'id="untrained-warning"' in html and "untrained (seed 7)" in html
    no_images = ("overview", "plates", "images")  # this run has no index table: tests/report/test_report_plates.py has one
    assert "not run" not in re.sub(rf'<section id="({"|".join(no_images)})">.*?</section>', "", html, flags=re.S)
    m = json.loads((out.parent / "metrics.json").read_text())
    assert all(v == "ok" for k, v in m["sections"].items() if k not in no_images), m["sections"]
    assert m["classify"]["deep"]["classifiers"]["svm"]["macro_f1"] == 0.78
    assert m["retrieval"]["classical"]["nsc_accuracy"] == 0.875
    assert m["resources"][0]["wall_s"] == 12.5 and m["resources"][0]["channel_images_per_s"] == 41.2
    assert m["resources"][0]["errors"] == 0
    clf = pd.read_csv(out.parent / "classifiers.csv")
    row = clf[(clf.feature_set == "classical") & (clf.classifier == "svm")].iloc[0]
    assert row["accuracy"] == pytest.approx(0.71) and row["cv_macro_f1_sd"] == pytest.approx(0.03)
    assert pd.read_csv(out.parent / "retrieval.csv")["nscb_accuracy"].tolist() == [0.8125, 0.8125]
    assert "F1 0.78 / acc 0.81" in html  # the classifier x feature-set table (3 significant digits, issue 26)
    assert "batch_size: 16" in html  # the run configuration


def test_report_is_self_contained(tmp_path):
    html = build_report(make_run(tmp_path / "run")).read_text()
    assert "<link" not in html and "<script" not in html and "http://" not in html and "https://" not in html
    srcs = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(srcs) >= 12 and all(s.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,"))
                                   for s in srcs)


def test_no_banner_when_trained_and_not_run_sections(tmp_path):
    run = make_run(tmp_path / "run", untrained=False)
    html = build_report(run).read_text()
    assert "untrained-warning" not in html
    empty = tmp_path / "empty"
    empty.mkdir()
    html = build_report(empty).read_text()
    for sid in SECTION_IDS[1:]:
        body = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S).group(1)
        assert "not run" in body, sid
    assert json.loads((empty / "report" / "metrics.json").read_text())["sections"]["retrieval"] == "not run"


def test_report_cli(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert run_cli(["report", run, "-o", tmp_path / "out" / "r.html"]) == 0
    assert (tmp_path / "out" / "r.html").exists() and (tmp_path / "out" / "metrics.json").exists()
    assert (tmp_path / "out" / "report.config.yaml").exists()
    assert run_cli(["report", tmp_path / "missing"]) != 0
    assert "missing: run folder not found" in capsys.readouterr().err


def test_corrupt_metrics_names_the_file(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    (run / "evaluate" / "retrieval" / "deep" / "metrics.json").write_text("{not json")
    assert run_cli(["report", run]) != 0
    err = capsys.readouterr().err
    assert "retrieval/deep/metrics.json" in err and "Traceback" not in err


def test_report_in_headless_chromium(tmp_path, chromium):
    out = build_report(make_run(tmp_path / "run"))
    res = check_page(out, tmp_path / "shot.png", binary=chromium)
    assert res.loaded and res.errors == []
    assert set(SECTION_IDS) | {"untrained-warning"} <= res.ids
    assert res.screenshot_std > 10.0  # a blank page has ~0


def test_chromium_check_catches_errors(tmp_path, chromium):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head></head><body><img alt="x" src="data:image/png;base64,AAAA">'
                   "<script>notDefined()</script></body></html>")
    res = check_page(bad, binary=chromium)
    assert any("notDefined" in e for e in res.errors)
    assert any("image not decoded" in e for e in res.errors)
    assert res.screenshot_std < 10.0  # nearly white


def test_retrieval_reasons_and_table_provenance_shown(tmp_path):
    from stratonet.core.tables import write_table

    run = make_run(tmp_path / "run")
    p = run / "evaluate" / "retrieval" / "deep" / "metrics.json"
    m = json.loads(p.read_text())
    m.update(nsc_accuracy=None, skipped={"nsc": "one compound per MoA"})
    p.write_text(json.dumps(m))
    write_table(pd.DataFrame({"Metadata_Plate": ["P"], "Metadata_Well": ["A01"], "DNA_high_0000": [1.0]}),
                run / "features" / "deep_real.parquet",
                provenance={"feature_set": "deep", "weights": "untrained (seed 7)", "table": "site"})
    write_table(pd.DataFrame({"Metadata_Plate": ["P"], "Metadata_Well": ["A01"], "DNA_high_0000": [1.0]}),
                run / "features" / "deep_ssl.parquet",
                provenance={"feature_set": "deep", "weights": "ssl-stratonet18-index (sha256 0123abcd)",
                            "weights_trained_on": "1 plate (P); 96 sites; labels not read", "table": "site"})
    html = build_report(run).read_text()
    assert '– <span class="why">one compound per MoA</span>' in html  # the dash says why
    overview = re.search(r'<section id="overview">(.*?)</section>', html, re.S).group(1)
    assert "features/deep_real.parquet" in overview  # e.g. the real FOV's features, listed with their shape
    assert "features/deep_real.parquet: untrained (seed 7)" in html
    # self-trained weights: which data they saw, beside them
    assert "weights trained on" in overview and "1 plate (P); 96 sites; labels not read" in overview
