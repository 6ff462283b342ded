"""Answers that do not depend on the route (issue 25): selection that keeps the control signal, a nested-CV assay
readout that never scores a well with settings that saw it, dose columns found or the skip said, plate effects seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratonet.assay import nested
from stratonet.assay.config import AssayConfig
from stratonet.assay.evaluate import evaluate_assay, readout_agreement
from stratonet.evaluate.plate_effects import plate_effect
from stratonet.assay.readouts import REFERENCE, ReadoutSpec
from stratonet.profile.controls import dose_column
from stratonet.profile.config import ProfileConfig
from stratonet.profile.pipeline import run_profile
from stratonet.profile.protect import ProtectConfig

SIGNAL = ["Cells_Signal_A", "Cells_Signal_B", "Cells_Signal_C"]


def _plate(seed: int = 0, n_noise: int = 30, plate: str = "P1") -> pd.DataFrame:
    """16 negcon, 8 poscon, 72 dose wells (9 doses); the signal sits in three nearly identical features and a
    noisier partner correlated with them (r ~ 0.93), which the correlation filter keeps instead (ground truth)."""
    rng = np.random.default_rng(seed)
    role = ["negcon"] * 16 + ["poscon"] * 8 + ["trt"] * 72
    dose = np.r_[np.zeros(16), np.full(8, 10), np.repeat(np.arange(1, 10), 8)]
    level = np.r_[np.zeros(16), np.full(8, 3.0), 3.0 / (1 + np.exp(-(np.repeat(np.arange(1, 10), 8) - 5)))]
    latent = level + rng.normal(0, 0.2, 96)
    df = pd.DataFrame({"Metadata_Plate": plate, "Metadata_Well": [f"W{i:02d}" for i in range(96)],
                       "Metadata_control_type": role, "Metadata_dose_index": dose})
    for f in SIGNAL:
        df[f] = latent + rng.normal(0, 0.05, 96)
    df["Cells_Partner_Noisy"] = latent + rng.normal(0, 0.4, 96)
    for j in range(n_noise):
        df[f"Cells_Noise_{j:02d}"] = rng.normal(0, 1, 96)
    return df


def test_selection_keeps_the_correlated_signal_features_and_records_the_cost():
    df = _plate()
    raw = run_profile(df, ProfileConfig(protect=ProtectConfig(enabled=False)))
    assert not any(f in raw.columns for f in SIGNAL)  # ground truth: the default selection removes the signal
    prof = run_profile(df)
    rep = prof.attrs["selection"]
    assert rep["guard"] == "on" and rep["removed"] >= 3
    assert set(SIGNAL) <= set(prof.columns) and set(SIGNAL) <= set(rep["protected"])
    mv = rep["multivariate_z_prime"]
    assert mv["after_selection"] < mv["all_features"] - 0.05  # what selection alone would have cost
    assert rep["cost"] <= rep["margin"] and not rep["cost_above_margin"]
    assert rep["top_separators"][0]["feature"] in SIGNAL
    assert any("separating feature(s) kept" in s["step"] for s in prof.attrs["steps"])


def test_selection_guard_with_a_label_and_without_controls():
    df = _plate().assign(Metadata_moa=lambda d: np.where(d.Metadata_control_type == "poscon", "pi3k", "other"))
    prof = run_profile(df.drop(columns="Metadata_control_type"),
                       ProfileConfig(normalize_method="none", protect=ProtectConfig(label="Metadata_moa")))
    assert set(prof.attrs["selection"]["protected"]) & set(SIGNAL)
    none = run_profile(df.drop(columns="Metadata_control_type"), ProfileConfig(normalize_method="none"))
    assert none.attrs["selection"]["guard"].startswith("not measured")


class _Recording(nested._Axis):
    """An axis that records the rows (as bytes) every fit saw."""

    seen: list[set] = []

    def fit(self, X, y):
        _Recording.seen[-1] |= {r.tobytes() for r in X}
        return super().fit(X, y)


def test_nested_cv_never_scores_a_well_with_settings_that_saw_it(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 12))
    neg = np.r_[np.ones(12, bool), np.zeros(28, bool)]
    pos = np.r_[np.zeros(12, bool), np.ones(8, bool), np.zeros(20, bool)]
    X[pos, :3] += 2.0
    folds: list[tuple[set, set]] = []
    original = nested._outer_fold

    def outer(Xtr, ytr, Xte, grid, seed):
        _Recording.seen.append(set())
        out = original(Xtr, ytr, Xte, grid, seed)
        folds.append(({r.tobytes() for r in Xte}, _Recording.seen[-1]))
        return out

    monkeypatch.setattr(nested, "_Axis", _Recording)
    monkeypatch.setattr(nested, "_outer_fold", outer)
    grid = nested.NestedGrid(top_k=(3, 0), C=(0.1, 1.0), scaling=("pooled",), inner_folds=3)
    res = nested.nested_readout(X, neg, pos, grid=grid)
    assert len(folds) == 20 + 1  # one per control well, one for the other wells
    for tested, fitted in folds:
        assert tested and fitted and not tested & fitted  # choosing and fitting never saw a scored well
    assert np.isfinite(res.scores).all()
    assert res.settings["C"] in (0.1, 1.0) and sum(res.settings["outer_choices"].values()) == 20
    assert np.median(res.scores[pos]) > np.median(res.scores[neg])


def test_default_assay_readouts_dose_detection_and_agreement():
    df = run_profile(_plate(n_noise=8))
    res = evaluate_assay(df, AssayConfig(n_boot=20, with_map=False, p_method="gaussian")).metrics
    p = res["plates"]["P1"]
    assert list(p["readouts"]) == ["nested", "reference"]
    assert p["readouts"]["nested"]["settings"]["scaling"] in ("pooled", "standard")
    assert res["dose_column"] == "Metadata_dose_index" and res["dose_scale"] == "linear"
    assert "(all sample wells)" in p["dose"]  # one-compound plate: no compound column needed
    agree = p["readout_agreement"][0]
    assert agree["readouts"] == ["nested", "reference"] and isinstance(agree["disagree"], bool)
    assert "readouts_disagree" in res["summary"]


def test_readout_agreement_flags_readouts_apart_beyond_their_noise():
    rng = np.random.default_rng(0)
    neg = np.r_[np.ones(16, bool), np.zeros(8, bool)]
    pos = ~neg
    good = np.where(pos, 5.0, 0.0) + rng.normal(0, 0.3, 24)
    bad = np.where(pos, 1.0, 0.0) + rng.normal(0, 0.3, 24)
    assert readout_agreement(good, bad, neg, pos)["disagree"]
    assert not readout_agreement(good, good + rng.normal(0, 0.01, 24), neg, pos)["disagree"]


def test_dose_column_found_and_a_missing_one_said():
    base = pd.DataFrame({"Metadata_Well": ["A01"], "x": [1.0]})
    assert dose_column(base.assign(Metadata_mmoles_per_liter=1.0)) == "Metadata_mmoles_per_liter"
    assert dose_column(base.assign(Metadata_dose_uM=1.0)) == "Metadata_dose_uM"
    assert dose_column(base.assign(Metadata_Dose_nM=1.0)) == "Metadata_Dose_nM"
    assert dose_column(base.assign(Metadata_compound_concentration_um=1.0)) == "Metadata_compound_concentration_um"
    assert dose_column(base) is None
    df = run_profile(_plate()).drop(columns="Metadata_dose_index")
    res = evaluate_assay(df, AssayConfig(readouts=[REFERENCE], with_map=False, p_method="gaussian")).metrics
    why = res["summary"]["dose_skipped"]["P1"]
    assert "no dose column" in why and "--dose-column" in why
    assert any(w.startswith("dose-response not fitted") for w in res["warnings"])


def test_plate_offset_is_seen_and_per_plate_normalisation_clears_it():
    two = pd.concat([_plate(0, plate="P1"), _plate(1, plate="P2")], ignore_index=True)
    feats = [c for c in two.columns if not c.startswith("Metadata_")]
    two.loc[two.Metadata_Plate == "P2", feats] += 3.0  # a plate offset on every feature
    eff = plate_effect(two, feats, provenance={}, say=False)
    assert eff["large"] and eff["rows"] == "negcon" and eff["median_fraction"] > 0.5
    assert "--by-plate" in eff["warning"] and "not" in eff["warning"]
    prof = run_profile(two, ProfileConfig(select=""))
    prov = {"profile": {"steps": prof.attrs["steps"]}}
    fixed = plate_effect(prof, [c for c in prof.columns if c in feats], provenance=prov, say=False)
    assert fixed["normalised_per_plate"] and fixed["warning"] is None and fixed["median_fraction"] < 0.2


def test_classify_records_the_plate_effect_warning():
    from stratonet.evaluate.classify import evaluate_classifiers
    from stratonet.evaluate.config import ClassifyConfig

    two = pd.concat([_plate(0, plate="P1"), _plate(1, plate="P2")], ignore_index=True)
    feats = [c for c in two.columns if not c.startswith("Metadata_")]
    two.loc[two.Metadata_Plate == "P2", feats] += 3.0
    two["Metadata_moa"] = np.where(two.Metadata_control_type == "poscon", "pi3k", "none")
    res = evaluate_classifiers(two, ClassifyConfig(classifiers=["logreg"], n_train=100, cv=0)).metrics
    assert res["plate_effect"]["large"] and "--by-plate" in res["plate_effect"]["warning"]
