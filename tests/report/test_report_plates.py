"""Plate maps, plate viewer, cell images and honest numbers in the report; `stratonet view`."""

from __future__ import annotations

import json
import re
import urllib.request

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from plate_run import FAILED_WELL, PLATE, build_plate_run
from stratonet.report import build_report
from stratonet.report import html as H
from stratonet.report.browser import check_page
from stratonet.report.numbers import MAX_CLASSES, confusion_html, correlation_html, group_classes


@pytest.fixture(scope="module")
def plate_report(tmp_path_factory):
    run = build_plate_run(tmp_path_factory.mktemp("plates"))
    return build_report(run)


def _section(html: str, sid: str) -> str:
    return re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S).group(1)


def test_plate_maps_numbers_and_marks(plate_report):
    html = plate_report.read_text()
    plates = _section(html, "plates")
    for kind in ("layout", "treatment", "cells", "focus", "saturation", "failed", "distance", "map"):
        assert f'id="map-{PLATE}-{kind}"' in plates, kind
    assert "96-well format: 48 well(s) with sites, 48 empty, 1 failed, 2 failed site(s)" in plates
    wells = pd.read_csv(plate_report.parent / "wells.csv").set_index("Metadata_Well")
    assert wells.loc[FAILED_WELL, "failed_fraction"] == 1.0 and wells["failed_fraction"].drop(FAILED_WELL).eq(0).all()
    sites = pd.read_parquet(plate_report.parent.parent / "features" / "classical.parquet")
    per_well = sites.groupby("Metadata_Well")["Count_Cells"].sum()
    assert (wells.loc[per_well.index, "cells"] == per_well).all()  # cell count map = sum over the well's sites
    assert np.isnan(wells.loc[FAILED_WELL, "cells"])  # no cells counted for a failed well, not zero
    dmso = wells[wells["Metadata_control_type"] == "negcon"]
    trt = wells[wells["Metadata_control_type"] == "trt"]
    assert trt["distance"].median() > dmso["distance"].median()  # treated wells carry the simulated signal
    m = json.loads((plate_report.parent / "metrics.json").read_text())
    assert m["plates"][PLATE]["failed_wells"] == 1 and m["plates"][PLATE]["thumbnail_px"] == 128
    assert m["sections"]["plates"] == "ok" and m["sections"]["images"] == "ok"
    # the failed well carries a red cross; wells are clickable with plate and well
    assert plates.count('stroke="#d00"') == plates.count('class="platemap"') == 8  # one cross per map
    assert f'data-plate="{PLATE}" data-well="B02"' in plates


def test_viewer_data_and_images(plate_report):
    html = plate_report.read_text()
    data = json.loads(re.search(r'id="viewer-data">(.*?)</script>', html, re.S).group(1))
    assert [c for c, _ in data["channels"][PLATE]] == ["DNA", "ER", "RNA", "AGP", "Mito"]
    b02 = data["plates"][PLATE]["B02"]
    assert len(b02["sites"]) == 2 and all(s["src"].startswith("data:image/jpeg;base64,") for s in b02["sites"])
    assert all(s["outlines"].startswith("data:image/png;base64,") for s in b02["sites"])  # from classical masks
    assert "failed: absent from classical" in data["plates"][PLATE][FAILED_WELL]["sites"][0]["note"]
    assert "pert_iname" in b02["meta"] and "cells" in b02["numbers"]
    images = _section(html, "images")
    assert 'id="montage"' in images and "nearest the treatment's median" in images
    n_treatments = pd.read_parquet(plate_report.parent.parent / "index" / "synth.parquet").groupby(
        ["Metadata_pert_iname", "Metadata_concentration"]).ngroups
    assert images.count('class="rep"') == n_treatments
    # issue 26: outlines in colours no channel uses (yellow outlines on a yellow RNA channel were unreadable)
    assert "outlines: nuclei white, cells cyan" in images
    assert "most confidently right" in images and "most confidently wrong" in images


def test_honest_classifier_numbers(plate_report):
    html = plate_report.read_text()
    clf = _section(html, "classifiers")
    table = pd.read_csv(plate_report.parent / "classifiers_n.csv")
    n_test = int(table["n_test"].iloc[0])
    assert n_test < 30 and f"fewer than 30 samples (n = {n_test}" in clf and "anecdotes, not measurements" in clf
    assert "classes in test" in clf and "No cross-validation in this run." in clf
    assert "cv_macro_f1 (mean of folds)" not in clf  # no CV: no empty CV columns, the text says so once
    pred = pd.read_csv(plate_report.parent.parent / "evaluate" / "classify" / "classical" / "predictions_logreg.csv")
    assert len(pred) == n_test and pred["probability"].between(0, 1).all()
    assert "probability" not in pd.read_csv(plate_report.parent.parent / "evaluate" / "classify" / "classical"
                                            / "predictions_svm.csv").columns
    assert "true \\ predicted" in _section(html, "confusion")
    assert "<details><summary>" in html and "<details open" not in html  # configuration collapsed


def test_missing_values_say_why():
    out = H.table(pd.DataFrame({"a": ["x", "y"], "v": [1.0, np.nan], "why:v": [None, "one compound per MoA"]}))
    assert '– <span class="why">one compound per MoA</span>' in out and "why:v" not in out
    assert '– <span class="why">no CV</span>' in H.table(pd.DataFrame({"a": ["x"], "v": [None]}), why={"v": "no CV"})


def test_confusion_groups_beyond_twenty_classes_and_marks_absent():
    names = [f"class_{i:02d}" for i in range(30)]
    counts = pd.DataFrame(np.diag(np.arange(30)), index=names, columns=names)
    grouped = group_classes(counts)
    assert grouped.shape == (MAX_CLASSES, MAX_CLASSES) and grouped.to_numpy().sum() == counts.to_numpy().sum()
    assert "other (11 classes)" in grouped.index
    html = confusion_html(counts.iloc[:5, :5], "fs: clf")
    assert "<i>absent</i>" in html  # class_00 has no test sample
    corr = pd.DataFrame(np.random.default_rng(0).uniform(-1, 1, (50, 50)), index=[f"a{i}" for i in range(50)],
                        columns=[f"b{i}" for i in range(50)])
    assert correlation_html(corr, "x").count("<tr><th class=\"t\" title=") == MAX_CLASSES


def test_plate_viewer_in_headless_chromium(plate_report, chromium, tmp_path):
    regions = ("montage", f"map-{PLATE}-cells", f"map-{PLATE}-layout", "viewer")
    click_c03 = ("var v=document.getElementById('viewer');v.setAttribute('data-before',v.getAttribute('data-well'));"
                 f"document.querySelector('#map-{PLATE}-cells rect[data-well=\"C03\"]')"
                 ".dispatchEvent(new MouseEvent('click',{bubbles:true}));")
    res = check_page(plate_report, tmp_path / "shot.png", binary=chromium, fragment="well=B02", regions=regions,
                     action=click_c03)
    assert res.loaded and res.errors == [], res.errors
    assert not res.horizontal_scroll, (res.layout["scrollWidth"], res.layout["clientWidth"])
    assert res.layout["clientWidth"] == 1280
    for rid in regions:
        assert res.region_std.get(rid, 0) > 5.0, (rid, res.region_std)  # rendered, not blank
    # the URL fragment opened well B02; then a click on C03 in the cell-count map opened C03: two sites painted
    assert f'id="viewer" data-well="{PLATE}/C03" data-before="{PLATE}/B02"' in res.dom
    assert len(res.layout["painted"]) == 2 and min(res.layout["painted"]) > 100


def test_view_command(plate_report, tmp_path, capsys):
    from stratonet.report.serve import find_report, serve_report

    run = plate_report.parent.parent
    assert find_report(run) == plate_report
    assert run_cli(["view", run, "--no-browser"]) == 0
    out = capsys.readouterr()
    assert plate_report.resolve().as_uri() in (out.out + out.err).replace("\n", "")
    server, url = serve_report(plate_report, 0)
    try:
        assert url.startswith("http://127.0.0.1:")
        body = urllib.request.urlopen(url, timeout=10).read()
        assert body == plate_report.read_bytes()
    finally:
        server.shutdown()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["view", empty, "--no-browser"]) != 0
    err = capsys.readouterr()
    assert "no report yet (write it with: stratonet report" in err.out + err.err
    assert run_cli(["view", tmp_path / "missing"]) != 0


def test_pooled_cv_shown_when_present(tmp_path):
    from test_report import make_run

    run = make_run(tmp_path / "run")
    p = run / "evaluate" / "classify" / "deep" / "metrics.json"
    m = json.loads(p.read_text())
    m["n_samples"] = 40
    m["protocol"] = {"cv_folds": 3, "cv_folds_lacking_classes": [{"fold": 1, "classes_absent_from_test": ["actin"]}]}
    m["classifiers"]["svm"]["cv_pooled"] = {"accuracy": 0.5, "macro_f1": 0.4321}
    p.write_text(json.dumps(m))
    out = build_report(run)
    clf = _section(out.read_text(), "classifiers")
    assert "0.432" in clf and "scores all out-of-fold predictions together" in clf
    assert "1 CV fold(s) lack a class in their test part (e.g. fold 1: actin)" in clf
    row = pd.read_csv(out.parent / "classifiers_n.csv").query("feature_set == 'deep' and classifier == 'svm'").iloc[0]
    assert row["cv pooled macro_f1"] == 0.4321 and row["cv pooled n"] == 40
    # classical has no pooled figures: the dash says why
    assert "pooled out-of-fold metrics are not computed by this version" in clf


def test_real_fov_shown_in_viewer_and_images(tmp_path):
    """The bundled real JUMP field of view (3 channels, 1080 px, no profiles): plate map, viewer and image."""
    from stratonet.demo.pipeline import REAL_FOV_CHANNELS, REAL_FOV_PLATE, bundled_fov_dir
    from stratonet.index import build_index
    from stratonet.core.tables import write_table

    run = tmp_path / "run"
    index = build_index(bundled_fov_dir(), "phenix", plate=REAL_FOV_PLATE, channel_map=REAL_FOV_CHANNELS)
    write_table(index, run / "index" / "real_fov.parquet")
    site = index[["Metadata_Plate", "Metadata_Well", "Metadata_Site"]].assign(Count_Cells=57, DNA_high_0000=1.0)
    write_table(site, run / "features" / "classical_real.parquet")
    html = build_report(run).read_text()
    data = json.loads(re.search(r'id="viewer-data">(.*?)</script>', html, re.S).group(1))
    assert [c for c, _ in data["channels"][REAL_FOV_PLATE]] == ["DNA", "RNA", "AGP"]  # Cell Painting order
    a01 = data["plates"][REAL_FOV_PLATE]["A01"]
    assert a01["sites"][0]["src"].startswith("data:image/jpeg") and "57 cells" in a01["sites"][0]["note"]
    images = _section(html, "images")
    assert "Plates without treatment profiles (first wells, one site each)" in images and f"{REAL_FOV_PLATE}/A01/1" in images
    wells = pd.read_csv(tmp_path / "run" / "report" / "wells.csv")
    assert wells["focus"].iloc[0] > 0 and 0 <= wells["saturated"].iloc[0] < 0.01  # real uint16 image numbers


def test_distance_to_negcon_is_robust_and_scores_controls_out_of_sample():
    from stratonet.report.plates import Z_CLIP, distance_to_negcon

    rng = np.random.default_rng(0)
    neg = pd.DataFrame(rng.normal(size=(10, 5)), columns=[f"f{i}" for i in range(5)]).assign(const=1e9)
    trt = pd.DataFrame([[3.0] * 5 + [1e12]], columns=neg.columns)
    prof = pd.concat([neg, trt], ignore_index=True).assign(
        Metadata_Plate="P", Metadata_Well=[f"A{i + 1:02d}" for i in range(11)],
        Metadata_control_type=["negcon"] * 10 + ["trt"])
    d = distance_to_negcon(prof, list(neg.columns)).set_index("Metadata_Well")
    assert 1.0 < d.loc["A11", "distance"] < Z_CLIP  # the zero-MAD feature is left out, not 1e12
    assert d.loc["A11", "distance"] > d["distance"].iloc[:10].max()
    assert d.loc["A11", "p"] == pytest.approx(1 / 11) and np.isnan(d["q"].iloc[:10]).all()
