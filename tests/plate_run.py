"""A small run folder with real images for the plate-map, viewer and image tests (about 10 s to build).

A 48-well synthetic plate (2 sites, 128 px) with ground-truth masks copied to where ``extract classical
--save-masks`` puts them, a site-level feature table with ``Count_Cells`` (one well dropped: a failed well),
well profiles, classifier predictions and retrieval output.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

import report_fixtures as rf

PLATE = "SYNTH01"
FAILED_WELL = "A02"


def build_plate_run(root: Path, wells: int = 48, sites: int = 2, size: int = 128, workers: int = 1) -> Path:
    """Write the run folder under ``root`` and return it."""
    from stratonet.evaluate.classify import evaluate_classifiers, write_classify
    from stratonet.evaluate.config import ClassifyConfig, RetrievalConfig
    from stratonet.evaluate.retrieval import evaluate_retrieval, write_retrieval
    from stratonet.index import build_index
    from stratonet.profile import ProfileConfig, run_profile
    from stratonet.runtime import make_plate
    from stratonet.core.tables import read_table, write_table

    plate_dir, run = root / "plate", root / "run"
    make_plate(plate_dir, wells=wells, sites=sites, seed=0, size=size, plate=PLATE, masks=True, progress=False,
               workers=workers)
    index = build_index(plate_dir / "load_data.csv", "loaddata")
    write_table(index, run / "index" / "synth.parquet")
    mdir = run / "features" / "classical" / "masks"
    mdir.mkdir(parents=True)
    for p in (plate_dir / "masks").glob("*.tiff"):  # r01c02f01-nuclei.tiff -> SYNTH01_A02_1_Nuclei.tiff
        m = re.match(r"r(\d+)c(\d+)f(\d+)-(nuclei|cells)\.tiff", p.name)
        if m:
            well = f"{chr(64 + int(m.group(1)))}{int(m.group(2)):02d}"
            shutil.copyfile(p, mdir / f"{PLATE}_{well}_{int(m.group(3))}_{m.group(4).capitalize()}.tiff")
    meta = index[[c for c in index.columns if c.startswith("Metadata_")]]
    feats = rf.features_for(meta.assign(Metadata_moa=meta["Metadata_moa"].where(
        meta["Metadata_moa"].isin(rf.MOAS), "tubulin")), [f"Cells_Intensity_F{i:02d}_DNA" for i in range(12)],
        {f"Cells_Intensity_F{i:02d}_DNA": 2.0 for i in range(6)}, seed=3)
    feats["Metadata_moa"] = meta["Metadata_moa"].to_numpy()
    feats["Count_Cells"] = np.random.default_rng(0).integers(20, 60, len(feats))
    feats = feats[feats["Metadata_Well"] != FAILED_WELL]
    site_table = write_table(feats, run / "features" / "classical.parquet", provenance={"feature_set": "classical"})
    prof = run_profile(read_table(site_table).drop(columns=["Count_Cells"]), ProfileConfig(
        aggregate_level="well", operation="median", normalize_method="mad_robustize", by_plate=True,
        reference="negcon", select=["drop_na_columns"]))
    prof.attrs.clear()
    prof_path = write_table(prof, run / "profiles" / "classical.parquet")
    prof = read_table(prof_path)
    cfg = ClassifyConfig(label="Metadata_moa", classifiers=["logreg", "svm"], n_train=60, cv=0, test_size=0.3,
                         permutation_features=2)
    write_classify(evaluate_classifiers(prof, cfg, name="classical"), run / "evaluate" / "classify" / "classical")
    found = evaluate_retrieval(prof, RetrievalConfig(label="Metadata_moa", treatment=["Metadata_pert_iname"],
                                                     null_size=200), name="classical")
    write_retrieval(found, run / "evaluate" / "retrieval" / "classical")
    return run
