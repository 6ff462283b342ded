"""Issue 26: the report of a real plate (BBBC013, 96 wells), opened in headless Chromium.

The run is built the way a user builds it, through the CLI, from ../shared/data and the small well table in
tests/data (no extraction, to stay fast): an index without treatment labels, well profiles labelled only by
``profile --platemap`` (the issue's case: labels that never reached the plate maps), ``evaluate assay`` on the
plate's dose index, then ``report``. Checks: no "unknown" treatment where the labels exist, doses shown as numbers
with their unit ("dose index" here: BBBC013 gives no molar doses) and sorted numerically, the overview counting the
assay, no advice to run what ran, and a site that opens at its full stored resolution from the viewer.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bbbc013_translocation"
WELLS = Path(__file__).parents[1] / "data" / "bbbc013_classical_wells.parquet"
CONTROLS = {"negative_control": "negcon", "positive_control": "poscon", "dose_series": "trt"}


@pytest.fixture(scope="module")
def bbbc013_report(tmp_path_factory) -> Path:
    if not (DATA / "metadata.csv").exists():
        pytest.skip(f"{DATA} not found (the shared data folder)")
    tmp = tmp_path_factory.mktemp("bbbc013")
    run = tmp / "run"
    m = pd.read_csv(DATA / "metadata.csv")
    images = DATA / "images"
    pd.DataFrame({"Metadata_Plate": m.plate, "Metadata_Well": m.well, "Metadata_Site": 1,
                  "FileName_OrigGFP": [Path(p).name for p in m.file_gfp], "PathName_OrigGFP": str(images),
                  "FileName_OrigDNA": [Path(p).name for p in m.file_dna], "PathName_OrigDNA": str(images)},
                 ).to_csv(tmp / "load_data.csv", index=False)
    pd.DataFrame({"well_position": m.well, "control_type": m.control_type.map(CONTROLS),
                  "dose_index": m.dose_index,
                  "pert_iname": m.control_type.map({"negative_control": "DMSO", "positive_control": "poscon",
                                                    "dose_series": "PI3Ki"})}).to_csv(tmp / "platemap.csv",
                                                                                      index=False)
    wells = pd.read_parquet(WELLS)  # real classical well medians; their labels are dropped, as a bare index has none
    feats = [c for c in wells.columns if not c.startswith("Metadata_")]
    keep = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    (run / "features").mkdir(parents=True)
    wells[keep + feats].to_parquet(tmp / "classical.parquet")
    assert run_cli(["index", tmp / "load_data.csv", "-o", run / "index.parquet", "--no-check"]) == 0
    assert run_cli(["profile", tmp / "classical.parquet", "-o", run / "profiles" / "classical.parquet",
                    "--platemap", tmp / "platemap.csv", "--select", "drop_na_columns"]) == 0
    assert run_cli(["evaluate", "assay", run / "profiles" / "classical.parquet", "-o", run,
                    "--dose-column", "Metadata_dose_index", "--n-boot", "20", "--null-size", "100"]) == 0
    assert run_cli(["report", run]) == 0
    return run / "report" / "report.html"


def _section(html: str, sid: str) -> str:
    return re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S).group(1)


def test_labels_from_the_platemap_reach_every_part(bbbc013_report):
    html = bbbc013_report.read_text()
    plates, images = _section(html, "plates"), _section(html, "images")
    assert "unknown" not in plates, "a treatment or control type shown as unknown although the profiles label it"
    assert "unknown" not in images and "no images read" not in images
    for ctl in ("negcon", "poscon", "trt"):
        assert f"</i>{ctl}</span>" in plates, ctl  # the control-type legend
    overview = _section(html, "overview")
    assert "Feature sets evaluated: classical (assay)" in overview
    assert "run evaluate retrieval" not in html and "run stratonet evaluate retrieval" not in html
    assert 'id="map-ExampleSBS-1049-map"' in plates  # per-well mAP from evaluate assay


def test_doses_are_numbers_with_their_unit_sorted_numerically(bbbc013_report):
    html = bbbc013_report.read_text()
    legend = re.search(r'id="map-ExampleSBS-1049-treatment".*?<div class="legend">(.*?)</div>', html, re.S).group(1)
    labels = re.findall(r"</i>([^<]+)</span>", legend)
    doses = [float(x) for x in re.findall(r"PI3Ki @ dose index (\d+(?:\.\d+)?)", " ".join(labels))]
    assert doses == sorted(doses) and len(doses) == 9, labels
    assert "@1" not in legend and "PI3Ki@" not in _section(html, "assay")  # no raw compound@dose keys
    assay = _section(html, "assay")
    assert "EC50 (dose index)" in assay
    svgs = [base64.b64decode(b).decode() for b in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", assay)]
    curve = next(s for s in svgs if "4PL fit" in s)  # the dose-response panel is vector, its text is text
    assert "dose index (Metadata_dose_index)" in curve and "EC50 dose index " in curve


def test_site_opens_at_full_resolution_in_chromium(bbbc013_report, chromium):
    from stratonet.images.io import read_image
    from stratonet.report.browser import check_page

    native = read_image(DATA / "images" / "Channel1-05-A-05.tif").shape
    click = ("document.querySelector('rect.w[data-well=\"A05\"]').dispatchEvent(new MouseEvent('click',"
             "{bubbles:true}));document.querySelector('#viewer canvas.site').click();")
    res = check_page(bbbc013_report, binary=chromium, action=click, window=(1280, 900))
    assert res.loaded and not res.errors, res.errors
    zoom = re.search(r'<canvas class="zoom-full"[^>]*>', res.dom)
    assert zoom, "clicking a site did not open the enlarged view"
    tag = zoom.group(0)
    assert f'width="{native[1]}"' in tag and f'height="{native[0]}"' in tag, tag
    assert f'data-native="{native[1]}x{native[0]}"' in tag
    painted = int(re.search(r'data-painted="(\d+)"', tag).group(1))
    assert painted > 0.2 * native[0] * native[1], painted  # cells drawn, not a black canvas
    assert 'id="site-zoom"' in res.dom and 'data-site="ExampleSBS_1049/A05/1"' in res.dom
    assert not res.horizontal_scroll, res.layout  # wide tables scroll in their box; the page stays 1,280 px wide


def test_metrics_json_keeps_the_numbers(bbbc013_report):
    metrics = json.loads((bbbc013_report.parent / "metrics.json").read_text())
    assert metrics["sections"]["assay"] == "ok" and metrics["sections"]["plates"] == "ok"
    wells = pd.read_csv(bbbc013_report.parent / "wells.csv")
    assert wells["Metadata_pert_iname"].notna().all() and wells["Metadata_dose_index"].notna().all()
