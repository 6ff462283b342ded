"""Write a synthetic plate: phenix-layout TIFFs, LoadData CSV, JUMP-style platemap and ground truth.

Layout of ``OUT``::

    Images/r01c01f01p01-ch1sk1fk1fl1.tiff ...   16-bit TIFFs, ch1..ch5 = Mito, AGP, RNA, ER, DNA
    masks/r01c01f01-nuclei.tiff, -cells.tiff    ground-truth labels (with ``masks=True``)
    load_data.csv                               CellProfiler LoadData (absolute paths) + treatment columns
    platemap/<plate>_platemap.txt               well_position, broad_sample, solvent, concentration
    platemap/barcode_platemap.csv               Assay_Plate_Barcode, Plate_Map_Name
    platemap/compound_metadata.tsv              broad_sample, pert_iname, moa, control_type, description
    ground_truth.csv                            per well: compound, dose, phenotype, effect size
    ground_truth_sites.parquet                  per site: cell count, mean nuclear area, nucleoli, ...
    synth.json                                  every generator parameter, seed, version

A rerun with the same parameters resumes (finished sites are kept); a folder holding a different plate is refused
unless ``overwrite=True``. This module plans a plate and writes its parts (:func:`start_plate`, :func:`write_site`,
:func:`complete_plate`); the resumable run that writes a whole plate is :func:`stratonet.runtime.make_plate`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.core.progress import get_logger
from stratonet.synth.compounds import (
    COMPOUNDS, CONTROL_ID, CONTROL_MOA, CONTROL_NAME, DOSES_UM, effect_summary, effects_for,
)
from stratonet.synth.layout import (
    CHANNELS, PHENIX_CHANNELS, WellSpec, make_platemap, phenix_name, plate_format_for,
)
from stratonet.synth.render import GENERATOR_VERSION, SiteTruth, SynthParams, plate_effect, render_site
from stratonet.core.tables import write_table

COMPRESSIONS = ("none", "zlib", "lzw")
LOADDATA_CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")  # JUMP LoadData column order
SITE_TRUTH = "ground_truth_sites.parquet"


@dataclass
class PlateSpec:
    """A synthetic plate: its platemap and generator parameters (and, once written, its folder).

    Use :func:`plan_plate` for an in-memory plate and :func:`stratonet.runtime.make_plate` to write one.
    """

    plate: str
    seed: int
    size: int
    sites: int
    wells: list[WellSpec]
    params: SynthParams
    compression: str = "none"
    out: Path | None = None
    _by_name: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._by_name = {w.well: w for w in self.wells}

    @property
    def n_wells(self) -> int:
        return len(self.wells)

    def well(self, name: str) -> WellSpec:
        """The well called ``name`` (``A01`` style)."""
        from stratonet.index.schema import normalise_well

        key = normalise_well(name)
        if key not in self._by_name:
            raise StratoNetError(f"well {name} is not on plate {self.plate} ({self.n_wells} wells)")
        return self._by_name[key]

    def image_path(self, well: WellSpec, site: int, channel: int) -> Path:
        """Path of one channel image (``channel`` is the phenix channel number 1..5)."""
        if self.out is None:
            raise StratoNetError("this plate has not been written (use make_plate)")
        return self.out / "Images" / phenix_name(well.row, well.col, site, channel)

    def platemap_frame(self) -> pd.DataFrame:
        """One row per well: well, row, column and the treatment columns."""
        return pd.DataFrame([{"Metadata_Well": w.well, "row": w.row, "col": w.col, **w.metadata()}
                             for w in self.wells])

    def identity(self) -> dict:
        """What makes two plates the same (compared before resuming into an existing folder)."""
        return {"plate": self.plate, "seed": self.seed, "wells": self.n_wells, "sites": self.sites,
                "size": self.size, "compression": self.compression, "generator_version": GENERATOR_VERSION,
                "params": self.params.to_dict()}

    def to_json(self) -> dict:
        """synth.json content."""
        from stratonet import __version__

        return {
            "generator": "stratonet.synth",
            "stratonet_version": __version__,
            **self.identity(),
            "plate_format": self.params.plate_format,
            "cell_scale": self.params.scale,
            "channels": {f"ch{k}": v for k, v in PHENIX_CHANNELS.items()},
            "file_pattern": "Images/r{row:02d}c{col:02d}f{site:02d}p01-ch{channel}sk1fk1fl1.tiff",
            "doses_um": list(DOSES_UM),
            "compounds": [{"broad_sample": c.broad_sample, "pert_iname": c.pert_iname, "moa": c.moa,
                           "description": c.description, "ec50_um": c.ec50_um, "hill": c.hill}
                          for c in COMPOUNDS],
            "n_negcon_wells": sum(w.control_type == "negcon" for w in self.wells),
            "n_trt_wells": sum(w.control_type == "trt" for w in self.wells),
            "platemap_name": platemap_name(self.plate),
        }


def platemap_name(plate: str) -> str:
    return f"{plate}_platemap"


def _validate(wells: int, sites: int, size: int, compression: str) -> None:
    plate_format_for(int(wells))  # 1..384
    if int(sites) < 1:
        raise ConfigError(f"--sites must be at least 1 (got {sites})")
    if not 64 <= int(size) <= 8192:
        raise ConfigError(f"--size {size}: choose 64..8192 px")
    if compression not in COMPRESSIONS:
        raise ConfigError(f"--compression {compression}: choose one of {', '.join(COMPRESSIONS)}")


def plan_plate(wells: int = 96, sites: int = 4, seed: int = 0, size: int = 1080, plate: str = "SYNTH01",
               compression: str = "none") -> PlateSpec:
    """The platemap and generator parameters of a plate, without writing anything.

    Returns
    -------
    PlateSpec
        Pass it to :func:`~stratonet.synth.render.render_site` to render sites in memory.
    """
    _validate(wells, sites, size, compression)
    params = SynthParams(seed=int(seed), plate=str(plate), size=int(size), plate_format=plate_format_for(int(wells)))
    return PlateSpec(plate=str(plate), seed=int(seed), size=int(size), sites=int(sites),
                     wells=make_platemap(int(wells), int(seed), str(plate)), params=params,
                     compression=compression)


def check_out(out: str | Path, spec: PlateSpec, overwrite: bool = False) -> None:
    """Refuse an output folder that holds a different plate (or another image set) unless ``overwrite``.

    With ``overwrite``, the previous plate's files are removed (only the files this generator writes).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    meta = out / "synth.json"
    if meta.exists():
        try:
            old = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        same = {k: old.get(k) for k in spec.identity()} == json.loads(json.dumps(spec.identity()))
        if not same:
            if not overwrite:
                diff = [k for k in spec.identity() if old.get(k) != json.loads(json.dumps(spec.identity()))[k]]
                raise ConfigError(f"{out}: holds a different synthetic plate (differs in {', '.join(diff)}); "
                                  "use --overwrite to replace it")
            _remove_plate(out)
    elif (out / "Images").exists() or (out / "load_data.csv").exists():
        if not overwrite:
            raise ConfigError(f"{out}: holds images that are not a synthetic plate of this generator; "
                              "use --overwrite to replace them")
        _remove_plate(out)


def _remove_plate(out: Path) -> None:
    for d in ("Images", "masks", "platemap", SITE_TRUTH + ".parts"):
        if (out / d).is_dir():
            shutil.rmtree(out / d)
    for f in ("load_data.csv", "ground_truth.csv", SITE_TRUTH, "synth.json"):
        (out / f).unlink(missing_ok=True)


def start_plate(out: Path, spec: PlateSpec, overwrite: bool = False) -> dict:
    """Check ``out`` (:func:`check_out`), create its image folder and mark the plate incomplete in synth.json.

    Returns
    -------
    dict
        The synth.json content (see :meth:`PlateSpec.to_json`), for :func:`complete_plate`.
    """
    check_out(out, spec, overwrite)
    spec.out = out
    (out / "Images").mkdir(parents=True, exist_ok=True)
    meta = spec.to_json()
    (out / "synth.json").write_text(json.dumps({**meta, "complete": False}, indent=2))
    return meta


def site_jobs(spec: PlateSpec, out: Path, masks: bool, done: set[tuple]) -> list[tuple]:
    """The sites still to render, as arguments of :func:`write_site` (``done``: keys plate, well, site as text)."""
    todo = [(w, s) for w in spec.wells for s in range(1, spec.sites + 1)
            if (spec.plate, w.well, str(s)) not in done]
    return [(spec.params, w, s, str(out), spec.compression, masks) for w, s in todo]


def complete_plate(spec: PlateSpec, out: Path, meta: dict) -> None:
    """Write the plate's tables (LoadData, platemap, ground truth) and mark it complete in synth.json."""
    _write_tables(spec, out)
    (out / "synth.json").write_text(json.dumps({**meta, "n_sites": spec.n_wells * spec.sites, "complete": True},
                                               indent=2))
    get_logger().info("synth: wrote %d wells x %d sites to %s", spec.n_wells, spec.sites, out)


def write_site_job(job: tuple) -> dict:
    """:func:`write_site` on one tuple of :func:`site_jobs` (a picklable function for a process pool)."""
    return write_site(*job)


def write_site(params: SynthParams, well: WellSpec, site: int, out: str, compression: str, masks: bool) -> dict:
    """Render one site, write its five TIFFs (atomically) and return its ground-truth row."""
    import tifffile

    image, truth = render_site(params, well.well, site, treatment=well.pert_iname, dose=well.concentration,
                               masks=True)
    comp = None if compression == "none" else compression
    folder = Path(out) / "Images"
    for i, ch in enumerate(sorted(PHENIX_CHANNELS)):
        _atomic_tiff(folder / phenix_name(well.row, well.col, site, ch), image[i], comp)
    if masks:
        mdir = Path(out) / "masks"
        mdir.mkdir(exist_ok=True)
        stem = f"r{well.row:02d}c{well.col:02d}f{site:02d}"
        _atomic_tiff(mdir / f"{stem}-nuclei.tiff", truth.nuclei.astype(np.uint16), "zlib")
        _atomic_tiff(mdir / f"{stem}-cells.tiff", truth.cells.astype(np.uint16), "zlib")
    return {"Metadata_Plate": params.plate, "Metadata_Well": well.well, "Metadata_Site": str(site),
            **_truth_row(truth)}


def _truth_row(truth: SiteTruth) -> dict:
    n = truth.n_cells
    return {
        "n_cells": n,
        "mean_nuclear_area_px": float(truth.nuclear_area.mean()) if n else float("nan"),
        "mean_nucleoli_per_cell": float(truth.nucleoli[~truth.pyknotic].mean()) if (~truth.pyknotic).any()
        else float("nan"),
        "pyknotic_fraction": float(truth.pyknotic.mean()) if n else 0.0,
        "mean_fibre_amplitude": float(truth.fibre_amplitude.mean()) if n else 0.0,
        "mean_mito_fragmentation": float(truth.mito_fragmentation.mean()) if n else 0.0,
    }


def _atomic_tiff(path: Path, array: np.ndarray, compression: str | None) -> None:
    import tifffile

    tmp = path.with_name(path.name + ".tmp")
    tifffile.imwrite(tmp, array, photometric="minisblack", compression=compression)
    tmp.replace(path)


def _write_tables(spec: PlateSpec, out: Path) -> None:
    """load_data.csv, the platemap files and the per-well ground truth."""
    images = (out / "Images").resolve()
    chan_no = {v: k for k, v in PHENIX_CHANNELS.items()}
    rows = []
    for w in spec.wells:
        for s in range(1, spec.sites + 1):
            row = {"Metadata_Plate": spec.plate, "Metadata_Well": w.well, "Metadata_Site": s, **w.metadata()}
            for ch in LOADDATA_CHANNELS:
                row[f"FileName_Orig{ch}"] = phenix_name(w.row, w.col, s, chan_no[ch])
                row[f"PathName_Orig{ch}"] = str(images)
            rows.append(row)
    write_table(pd.DataFrame(rows), out / "load_data.csv")

    pm = out / "platemap"
    pm.mkdir(exist_ok=True)
    name = platemap_name(spec.plate)
    write_table(pd.DataFrame({"well_position": [w.well for w in spec.wells],
                              "broad_sample": [w.broad_sample for w in spec.wells],
                              "solvent": "DMSO",
                              "concentration": [w.concentration for w in spec.wells]}), pm / f"{name}.tsv")
    (pm / f"{name}.tsv").replace(pm / f"{name}.txt")  # JUMP platemaps are tab-separated .txt
    write_table(pd.DataFrame({"Assay_Plate_Barcode": [spec.plate], "Plate_Map_Name": [name]}),
                pm / "barcode_platemap.csv")
    compounds = [{"broad_sample": CONTROL_ID, "pert_iname": CONTROL_NAME, "moa": CONTROL_MOA,
                  "control_type": "negcon", "description": "vehicle control"}]
    compounds += [{"broad_sample": c.broad_sample, "pert_iname": c.pert_iname, "moa": c.moa,
                   "control_type": "trt", "description": c.description} for c in COMPOUNDS]
    write_table(pd.DataFrame(compounds), pm / "compound_metadata.tsv")

    truth = []
    for w in spec.wells:
        comp = w.compound
        quantity, value = effect_summary(comp, w.concentration)
        truth.append({
            "Metadata_Plate": spec.plate, "Metadata_Well": w.well, "compound": w.pert_iname,
            "broad_sample": w.broad_sample, "dose_um": w.concentration, "phenotype": w.moa,
            "control_type": w.control_type, "strength": comp.strength(w.concentration) if comp else 0.0,
            "effect_quantity": quantity, "effect_size": value,
            "plate_effect": plate_effect(spec.params, w.row, w.col),
            **effects_for(comp, w.concentration).effect_size,
        })
    write_table(pd.DataFrame(truth), out / "ground_truth.csv")
