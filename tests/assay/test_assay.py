"""Assay analytics: control statistics, out-of-sample readouts, 4PL fits, hit calling, the CLI and BBBC013."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from stratonet.assay.config import AssayConfig
from stratonet.assay.evaluate import AssayControlError, Controls, evaluate_assay, write_assay
from stratonet.assay.stats import (
    control_statistics, cv, robust_z_prime, signal_to_background, ssmd, z_prime, z_prime_per_column,
)
from stratonet.assay.dose import fit_4pl, logistic4
from stratonet.assay.hits import bh_adjust, call_hits, empirical_p
from stratonet.assay.readouts import ReadoutSpec, score_readout

# --- statistics against hand-computed values ------------------------------------------------------------------

POS = np.array([10.0, 12.0, 14.0])
NEG = np.array([1.0, 2.0, 3.0])


def test_z_prime_and_ssmd_match_hand_computed_values():
    # means 12 and 2, sample SDs 2 and 1: Z' = 1 - 3 * 3 / 10
    assert z_prime(POS, NEG) == pytest.approx(0.1)
    assert ssmd(POS, NEG) == pytest.approx(10 / np.sqrt(5))
    # medians 12 and 2; MADs 2 and 1 -> 1.4826 * 3 in all
    assert robust_z_prime(POS, NEG) == pytest.approx(1 - 3 * 1.4826 * 3 / 10)
    assert signal_to_background(POS, NEG) == pytest.approx(6.0)
    assert cv(POS) == pytest.approx(2 / 12)
    st = control_statistics(POS, NEG)
    assert (st["n_pos"], st["n_neg"]) == (3, 3)
    assert st["cv_neg"] == pytest.approx(0.5)


def test_statistics_are_nan_when_undefined_and_symmetric_in_direction():
    assert np.isnan(z_prime([1, 1, 1], [1, 1, 1]))
    assert np.isnan(signal_to_background([-1, -2, -3], [1, 2, 3]))  # a signed readout has no S/B
    assert z_prime(NEG, POS) == pytest.approx(z_prime(POS, NEG))
    X = np.column_stack([np.r_[POS, NEG], np.r_[NEG, POS]])
    m = np.r_[[True] * 3, [False] * 3]
    np.testing.assert_allclose(z_prime_per_column(X, m, ~m), [0.1, 0.1])


# --- out-of-sample readouts --------------------------------------------------------------------------------------

def _plate(seed=0, n_feat=40, effect=1.5):
    rng = np.random.default_rng(seed)
    n_neg, n_pos, n_trt = 12, 8, 10
    X = rng.normal(size=(n_neg + n_pos + n_trt, n_feat))
    X[n_neg:n_neg + n_pos, :5] += effect
    neg = np.zeros(len(X), bool)
    neg[:n_neg] = True
    pos = np.zeros(len(X), bool)
    pos[n_neg:n_neg + n_pos] = True
    return X, neg, pos


@pytest.mark.parametrize("spec", [ReadoutSpec("diff"), ReadoutSpec("logistic"), ReadoutSpec("diff", top_k=5),
                                  ReadoutSpec("diff", pca=3), ReadoutSpec("lda")], ids=lambda s: s.label)
def test_a_control_well_never_scores_itself(spec):
    """Flipping a control well's own label (neg <-> pos) leaves its own score unchanged: it is not in its model."""
    X, neg, pos = _plate()
    base = score_readout(X, neg, pos, spec).scores
    for i in (0, 15):  # one negcon, one poscon well
        neg2, pos2 = neg.copy(), pos.copy()
        neg2[i], pos2[i] = pos[i], neg[i]
        flipped = score_readout(X, neg2, pos2, spec).scores
        assert flipped[i] == pytest.approx(base[i], rel=1e-9, abs=1e-9)
        others = np.flatnonzero(neg | pos)
        others = others[others != i]
        assert not np.allclose(flipped[others], base[others])  # the label does enter the other wells' models


def test_distance_readout_scores_negcon_wells_out_of_sample():
    """A negcon outlier is far from the others: its Mahalanobis score comes from a fit without it."""
    from sklearn.covariance import LedoitWolf

    X, neg, pos = _plate(n_feat=6)
    X[3] += 6.0
    s = score_readout(X, neg, pos, ReadoutSpec("mahalanobis")).scores
    keep = np.flatnonzero(neg)
    keep = keep[keep != 3]
    lw = LedoitWolf().fit(X[keep])
    d = X[3] - X[keep].mean(axis=0)
    assert s[3] == pytest.approx(np.sqrt(d @ lw.precision_ @ d))
    assert s[3] > np.max(np.delete(s[neg], 3))


# --- 4PL -----------------------------------------------------------------------------------------------------------

def test_4pl_recovers_ec50_within_its_95pct_ci_in_90pct_of_200_curves():
    rng = np.random.default_rng(7)
    x = np.repeat(np.arange(1, 10, dtype=float), 3)
    inside, ok = 0, 0
    for i in range(200):
        x50, hill = rng.uniform(3, 7), rng.uniform(0.3, 1.0)
        y = logistic4(x, 0.0, 1.0, x50, hill) + rng.normal(0, 0.08, x.size)
        fit = fit_4pl(x, y, n_boot=60, seed=i)
        ok += fit.status == "ok"
        inside += fit.status == "ok" and fit.ec50_lo <= x50 <= fit.ec50_hi
    assert ok >= 195
    assert inside / 200 >= 0.90


def test_4pl_on_concentrations_reports_ec50_in_dose_units():
    conc = np.repeat(np.logspace(-3, 1, 8), 3)
    y = logistic4(np.log10(conc), 1.0, 3.0, np.log10(0.05), 1.2) + np.random.default_rng(1).normal(0, 0.05, conc.size)
    fit = fit_4pl(conc, y, log_dose=True, n_boot=100)
    assert fit.status == "ok"
    assert fit.ec50_lo < 0.05 < fit.ec50_hi
    assert fit.ec50 == pytest.approx(0.05, rel=0.3)
    assert fit.top == pytest.approx(3.0, abs=0.2) and fit.bottom == pytest.approx(1.0, abs=0.2)


def test_flat_and_underdetermined_fits_are_reported_as_such_not_as_numbers():
    rng = np.random.default_rng(0)
    x = np.repeat(np.arange(1, 10, dtype=float), 3)
    flat = fit_4pl(x, rng.normal(0, 1, x.size))
    assert flat.status == "flat" and np.isnan(flat.ec50) and "F-test" in flat.note
    few = fit_4pl([1, 1, 2, 2, 3, 3], [0, 0.1, 0.5, 0.6, 1, 1.1])
    assert few.status == "failed" and np.isnan(few.ec50) and "too few doses" in few.note
    late = fit_4pl(x, logistic4(x, 0, 1, 14.0, 1.5) + rng.normal(0, 0.01, x.size))
    assert late.status in ("ec50_outside_range", "flat") and np.isnan(late.ec50)


# --- hits ------------------------------------------------------------------------------------------------------------

def test_bh_matches_scipy_and_statsmodels():
    from scipy.stats import false_discovery_control

    p = np.random.default_rng(3).uniform(0, 0.2, 50) ** 2
    np.testing.assert_allclose(bh_adjust(p), false_discovery_control(p, method="bh"))
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    np.testing.assert_allclose(bh_adjust(p), multitest.multipletests(p, method="fdr_bh")[1])


def test_empirical_p_and_hits():
    null = np.arange(1.0, 20.0)  # 19 null values
    np.testing.assert_allclose(empirical_p(np.array([100.0, 19.0, 0.0]), null), [1 / 20, 2 / 20, 1.0])
    scores = np.r_[np.random.default_rng(0).normal(0, 1, 40), [8.0, 9.0, 0.1]]
    neg = np.r_[[True] * 40, [False] * 3]
    table, info = call_hits(scores, neg, is_distance=False, fdr=0.1)
    assert table["hit"].tolist()[-3:] == [True, True, False]
    assert not table["hit"][:40].any()
    assert info["n_null"] == 40 and "warning" not in info
    _, info16 = call_hits(scores[24:], neg[24:], is_distance=False, fdr=0.05)  # 16 negcon: floor 1/17 > 0.05
    assert "no well can be a hit" in info16["warning"]


# --- evaluate_assay and the CLI ------------------------------------------------------------------------------------

def _profiles(n_pos=8, plates=("P1",)):
    rng = np.random.default_rng(0)
    rows, feats = [], []
    for plate in plates:
        for i in range(16):
            rows.append(("negcon", "DMSO", 0.0, plate))
        for i in range(n_pos):
            rows.append(("poscon", "POS", 30.0, plate))
        for d in np.logspace(-2, 1, 6):
            for r in range(3):
                rows.append(("trt", "cmpA", d, plate))
    meta = pd.DataFrame(rows, columns=["Metadata_control_type", "Metadata_compound", "Metadata_concentration",
                                       "Metadata_Plate"])
    meta["Metadata_Well"] = [f"W{i:03d}" for i in range(len(meta))]
    strength = np.where(meta.Metadata_control_type == "poscon", 1.0,
                        logistic4(np.log10(meta.Metadata_concentration.clip(lower=1e-9)), 0, 1, np.log10(0.3), 1.5))
    X = rng.normal(size=(len(meta), 30))
    X[:, :4] += 4 * strength[:, None]
    return pd.concat([meta, pd.DataFrame(X, columns=[f"Cells_F{i}" for i in range(30)])], axis=1)


def test_evaluate_assay_end_to_end(tmp_path):
    df = _profiles()
    cfg = AssayConfig(readouts=[ReadoutSpec("diff"), ReadoutSpec("feature", feature="Cells_F0")], n_boot=60,
                      null_size=200, p_method="gaussian")
    found = evaluate_assay(df, cfg, name="toy")
    write_assay(found, tmp_path)
    res = found.metrics
    p = res["plates"]["P1"]
    assert p["readouts"]["diff"]["n_pos"] == 8 and p["readouts"]["diff"]["n_neg"] == 16
    assert p["readouts"]["diff"]["z_prime"] > 0.3
    assert p["best_feature"]["feature"] in {"Cells_F0", "Cells_F1", "Cells_F2", "Cells_F3"}
    d = p["dose"]["cmpA"]
    assert d["status"] == "ok" and d["ec50_ci95"][0] < 0.3 * 3 and d["spearman_dose"] > 0.7
    assert p["hits"]["n_hits"] >= 8  # the top doses are hits
    assert any("n < 30" in w for w in res["warnings"])
    for f in ("metrics.json", "control_stats.csv", "well_scores.csv", "hits.csv", "dose_fits.csv",
              "hits_vs_map.csv", "control_distributions.png", "dose_curves.png", "feature_zprime.csv"):
        assert (tmp_path / f).exists(), f
    side = pd.read_csv(tmp_path / "hits_vs_map.csv")
    assert {"n_hits", "mean_average_precision", "map_q_value"} <= set(side.columns)


def test_too_few_controls_is_a_one_line_error_naming_column_and_control(tmp_path):
    with pytest.raises(AssayControlError, match="column 'Metadata_control_type'.*2 positive-control wells.*'poscon'"):
        evaluate_assay(_profiles(n_pos=2), AssayConfig(with_map=False))
    with pytest.raises(AssayControlError, match="control column 'Metadata_ctrl' not found"):
        evaluate_assay(_profiles(), AssayConfig(controls=Controls(column="Metadata_ctrl"), with_map=False))
    path = tmp_path / "few.parquet"
    _profiles(n_pos=2).to_parquet(path)
    assert run_cli(["evaluate", "assay", path, "-o", tmp_path / "run"]) == 2


def test_cli_assay_writes_its_folder(tmp_path, capsys):
    path = tmp_path / "toy.parquet"
    df = _profiles()
    df["Metadata_kind"] = df["Metadata_control_type"].map({"negcon": "neg", "poscon": "pos", "trt": "x"})
    df.to_parquet(path)
    rc = run_cli(["evaluate", "assay", path, "-o", tmp_path / "run", "--readout", "diff,mahalanobis",
                  "--control-column", "Metadata_kind", "--negcon", "neg", "--poscon", "pos", "--n-boot", "40",
                  "--null-size", "200", "--p-value", "gaussian"])
    assert rc == 0
    out = tmp_path / "run" / "evaluate" / "assay" / "toy"
    m = json.loads((out / "metrics.json").read_text())
    assert m["readouts"] == ["diff[top25]", "mahalanobis"] and m["controls"]["column"] == "Metadata_kind"
    assert (out / "assay.config.yaml").exists() or any(out.glob("*.yaml"))
    printed = capsys.readouterr()
    assert "Z'" in printed.out + printed.err


def test_report_shows_the_assay_section(tmp_path):
    from stratonet.report import build_report

    run = tmp_path / "run"
    cfg = AssayConfig(readouts=[ReadoutSpec("diff")], n_boot=40, null_size=200, p_method="gaussian")
    write_assay(evaluate_assay(_profiles(), cfg, name="toy"), run / "evaluate" / "assay" / "toy")
    html = build_report(run).read_text()
    body = html.split('<section id="assay">')[1].split("</section>")[0]
    assert "Z&#x27;" in body or "Z'" in body
    assert "toy" in body and "data:image/png;base64" in body and "Dose-response fits" in body
    assert "not run" not in body
    m = json.loads((run / "report" / "metrics.json").read_text())
    assert m["sections"]["assay"] == "ok" and m["assay"]["toy"]["plates"]["P1"]["n_pos"] == 8


def test_demo_assay_plate_layout(tmp_path):
    from stratonet.index import build_index
    from stratonet.synth.assay_plate import make_assay_plate

    csv = make_assay_plate(tmp_path, doses=(0.1, 1.0), replicates=2, n_negcon=3, n_poscon=3, size=96)
    ld = pd.read_csv(csv)
    assert ld["Metadata_control_type"].value_counts().to_dict() == {"negcon": 3, "poscon": 3, "trt": 4}
    assert set(ld.loc[ld.Metadata_control_type == "trt", "Metadata_concentration"]) == {0.1, 1.0}
    assert (ld.Metadata_true_ec50_um == 0.3).all()
    index = build_index(csv, "loaddata")
    assert len(index) == 10 and {"Path_ER", "Path_DNA"} <= set(index.columns)
