"""The demo's assay stage: a synthetic dose-series plate -> classical features -> profiles -> ``evaluate assay``.

The 24-well demo plate holds no positive control and at most two doses of a compound, too little for Z' and a 4PL,
so this stage renders its own small plate (:func:`stratonet.synth.assay_plate.make_assay_plate`): 16 DMSO wells,
6 positive-control wells (thapsigargin at a saturating 30 uM) and thapsigargin at 8 doses x 3 wells, whose true EC50
(0.3 uM) and Hill coefficient (1) are known. Classical features are limited to size/shape and intensity to keep the
stage short.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from stratonet.core.progress import console

DEMO_ASSAY = {
    "plate": {"compound": "thapsigargin", "doses_um": "8 log-spaced doses 0.01-10 uM, 3 wells each",
              "negcon_wells": 16, "poscon_wells": 6, "poscon": "thapsigargin 30 uM", "size_px": 256},
    "features": {"groups": ["areashape", "intensity"], "cell_channels": ["AGP", "ER"]},
    "profile": {"normalize": "mad_robustize vs negcon", "select": ["variance_threshold", "drop_na_columns"]},
    "assay": {"readouts": ["logistic[top25]", "diff", "feature:Cells_Intensity_MeanIntensity_ER"], "dose_column": "Metadata_concentration (log10)",
              "p_value": "gaussian (16 negcon wells: the empirical floor 1/17 is above the FDR)", "fdr": 0.05,
              "n_boot": 200, "null_size": 1000},
}


def assay_stage(ctx) -> None:
    """Render the assay plate, extract, profile and run :func:`stratonet.assay.evaluate.evaluate_assay`."""
    from stratonet.extract.classical.measure import MeasureParams
    from stratonet.evaluate._common import drop_attrs
    from stratonet.assay.config import AssayConfig
    from stratonet.assay.evaluate import evaluate_assay, write_assay
    from stratonet.assay.readouts import ReadoutSpec
    from stratonet.extract.classical.run import ClassicalConfig
    from stratonet.runtime import extract_classical
    from stratonet.index import build_index
    from stratonet.profile import ProfileConfig, run_profile
    from stratonet.synth.assay_plate import make_assay_plate
    from stratonet.core.tables import read_table, write_table

    out = Path(ctx.out)
    plate = make_assay_plate(out / "synth_assay", n_negcon=DEMO_ASSAY["plate"]["negcon_wells"],
                             n_poscon=DEMO_ASSAY["plate"]["poscon_wells"], size=DEMO_ASSAY["plate"]["size_px"],
                             seed=ctx.seed)
    index = write_table(build_index(plate, "loaddata"), out / "index" / "synth_assay.parquet")
    cfg = ClassicalConfig(groups=DEMO_ASSAY["features"]["groups"], measure=MeasureParams(texture_scales=(3,)))
    feats_dir = out / "features" / "classical_assay"
    extract_classical(read_table(index), feats_dir, cfg, workers=2)
    prof = run_profile(read_table(feats_dir / "site.parquet"), ProfileConfig(
        aggregate_level="well", operation="median", normalize_method="mad_robustize", by_plate=True,
        reference="negcon", select=DEMO_ASSAY["profile"]["select"]))
    drop_attrs(prof)
    profile_path = write_table(prof, out / "profiles" / "classical_assay.parquet",
                               provenance={"feature_set": "classical_assay"})
    a = DEMO_ASSAY["assay"]
    run_dir = out / "evaluate" / "assay" / "classical_assay"
    cfg = AssayConfig(readouts=[ReadoutSpec("logistic", top_k=25), ReadoutSpec("diff"),
                                ReadoutSpec("feature", feature="Cells_Intensity_MeanIntensity_ER")], fdr=a["fdr"],
                      p_method="gaussian", n_boot=a["n_boot"], null_size=a["null_size"], seed=ctx.seed,
                      compound_column="Metadata_pert_iname")
    found = evaluate_assay(prof, cfg, name="classical_assay", provenance={"feature_set": "classical_assay"})
    write_assay(found, run_dir)
    res = found.metrics
    (run_dir / "demo_assay.config.yaml").write_text(yaml.safe_dump(
        {"command": "stratonet demo (evaluate assay stage)", "options": DEMO_ASSAY}, sort_keys=False))
    p = next(iter(res["plates"].values()))
    st = p["readouts"]["logistic[top25]"]
    d = p["dose"].get("thapsigargin", {})
    ec50 = (f"EC50 {d['ec50']:.3g} uM [{d['ec50_ci95'][0]:.3g}, {d['ec50_ci95'][1]:.3g}] (true 0.3)"
            if d.get("status") == "ok" else f"dose fit {d.get('status')}: {d.get('note')}")
    console.print(f"  assay plate: Z' {st['z_prime']:.2f} (logistic axis on 25 features, n_pos {st['n_pos']}, n_neg {st['n_neg']}), "
                  f"{ec50}, {p['hits']['n_hits']} hits of {p['hits']['n_tested']} wells", highlight=False)
    ctx.outputs["assay (profiles)"] = profile_path
    ctx.outputs["assay results"] = run_dir
