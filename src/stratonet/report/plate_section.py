"""Report sections that show the plate and its cells: plate maps with the plate viewer, representative images,
and classifiers' most confident right and wrong calls.

Everything comes from the run folder: index tables (image paths and treatment metadata), site-level feature
tables (which sites were processed, cell counts), well-level profiles (distance to DMSO), retrieval output (mAP
per treatment), masks from ``extract classical --save-masks`` and classifier predictions.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.report import html as H
from stratonet.report import images as I
from stratonet.report import numbers as N
from stratonet.report import plates as P
from stratonet.report.viewer import JS

SITE_KEYS = P.SITE_KEYS
META_SHOWN = ["Metadata_pert_iname", "Metadata_broad_sample", "Metadata_JCP2022", "Metadata_compound",
              "Metadata_Compound", "Metadata_moa", "Metadata_concentration", "Metadata_Concentration",
              "Metadata_mmoles_per_liter", "Metadata_dose", "Metadata_dose_index", "Metadata_control_type",
              "Metadata_pert_type"]
#: Compound-name columns for a well's treatment label, most readable first.
TREATMENT_NAMES = ("Metadata_pert_iname", "Metadata_compound", "Metadata_Compound", "Metadata_broad_sample",
                   "Metadata_JCP2022", "Metadata_treatment", "Metadata_Treatment")
#: Control labels of other conventions, shown in the control colours (e.g. BBBC013's metadata).
CONTROL_ALIASES = {"negative_control": "negcon", "negative": "negcon", "neg": "negcon", "dmso": "negcon",
                   "positive_control": "poscon", "positive": "poscon", "pos": "poscon", "dose_series": "trt",
                   "treated": "trt", "treatment": "trt", "sample": "trt"}
#: Thumbnail edge (px) by number of sites in the run: keeps a 384-well, 4-site plate near 20 MB.
THUMB_STEPS = ((400, 128), (1600, 80), (10 ** 9, 56))
MAX_MONTAGE = 48
#: Channel-pixels of full-resolution images the report embeds for the enlarged site view (about 1 byte each as
#: JPEG, so ~ 100 MB of HTML at most); a larger screen is embedded at the largest edge that fits, and says so.
FULLRES_BUDGET = 100_000_000


@dataclass
class PlateData:
    """Sites of the plates shown, with their thumbnails and per-well numbers."""

    sites: pd.DataFrame  # one row per site: keys, metadata, Path_*, n_cells, failed (reason or "")
    channels: dict[str, list[str]] = field(default_factory=dict)  # plate -> channel names
    thumbs: dict[tuple[str, str, str], I.SiteThumb] = field(default_factory=dict)
    ranges: dict[str, np.ndarray] = field(default_factory=dict)  # plate -> (C, 2) display range
    masks: dict[tuple[str, str, str], dict[str, Path]] = field(default_factory=dict)
    wells: pd.DataFrame | None = None  # one row per (plate, well): numbers for maps and viewer
    notes: list[str] = field(default_factory=list)
    thumb_px: int = 128
    activity_set: str | None = None
    map_source: str | None = None  # "evaluate retrieval (deep)" or "evaluate assay (deep)"


def _key(row) -> tuple[str, str, str]:
    return str(row["Metadata_Plate"]), str(row["Metadata_Well"]), str(row["Metadata_Site"])


def _site_tables(run: Path) -> dict[str, Path]:
    """Site-level feature tables (``features/*.parquet`` and ``features/<classical>/site.parquet`` with
    Metadata_Site), by name."""
    import pyarrow.parquet as pq

    out = {}
    for name, p in P.find_feature_tables(run).items():
        try:
            names = pq.read_schema(p).names
        except Exception:  # listed as unreadable in the overview already
            continue
        if all(k in names for k in SITE_KEYS):
            out[name] = p
    return out


def collect_plates(run: Path, thumb_px: int | None = None, workers: int = 2, controls=None) -> PlateData | None:
    """Everything the plate maps, viewer and montages need; None when the run has no index table.

    ``controls`` (:class:`stratonet.core.controlnames.ControlNames`) names the controls when the index does not call
    them negcon / poscon."""
    import pyarrow.parquet as pq

    from stratonet.core.tables import read_table

    indexes = P.find_index_tables(run)
    if not indexes:
        return None
    index = pd.concat([read_table(p) for p in indexes], ignore_index=True)
    if not all(k in index.columns for k in SITE_KEYS):
        return None
    index = index.drop_duplicates(SITE_KEYS, keep="first")
    if controls is not None and not controls.is_default:
        from stratonet.core.controlnames import apply_control_names

        index, _ = apply_control_names(index, controls, "index")
    index["Metadata_Site"] = index["Metadata_Site"].astype(str)
    tables = _site_tables(run)
    present: dict[str, set] = {}
    counts = []
    table_meta = []
    for name, path in tables.items():
        names = pq.read_schema(path).names
        cols = SITE_KEYS + [c for c in ("Count_Cells", "Count_Nuclei") if c in names]
        t = pq.read_table(path, columns=cols).to_pandas()
        t["Metadata_Site"] = t["Metadata_Site"].astype(str)
        present[name] = set(map(tuple, t[SITE_KEYS].astype(str).to_numpy()))
        if "Count_Cells" in t.columns:
            counts.append(t)
        extra = [c for c in META_SHOWN if c in names and c not in index.columns]
        if extra:
            table_meta.append(pq.read_table(path, columns=SITE_KEYS + extra).to_pandas())
    feature_plates = {k[0] for s in present.values() for k in s}
    shown = index[index["Metadata_Plate"].astype(str).isin(feature_plates)] if feature_plates else index
    sites = shown.reset_index(drop=True).copy()
    for tm in table_meta:
        tm["Metadata_Site"] = tm["Metadata_Site"].astype(str)
        sites = sites.merge(tm.drop_duplicates(SITE_KEYS), on=SITE_KEYS, how="left")
    sites = _merge_profile_labels(sites, run)
    if counts:  # e.g. classical.parquet (synthetic plate) and classical_real.parquet (real FOV)
        c = pd.concat(counts, ignore_index=True).dropna(subset=["Count_Cells"]).drop_duplicates(SITE_KEYS)
        sites = sites.merge(c[SITE_KEYS + ["Count_Cells"]], on=SITE_KEYS, how="left")
    else:
        sites["Count_Cells"] = np.nan
    failed = []
    plates_of = {n: {x[0] for x in s} for n, s in present.items()}
    for _, r in sites.iterrows():
        k = _key(r)
        miss = [n for n, s in present.items() if k[0] in plates_of[n] and k not in s]
        failed.append(f"absent from {', '.join(miss)}" if miss else "")
    sites["failed"] = failed
    n_sites = len(sites)
    px = thumb_px or next(px for limit, px in THUMB_STEPS if n_sites <= limit)
    data = PlateData(sites=sites, masks=P.find_masks(run), thumb_px=px)
    for plate, grp in sites.groupby("Metadata_Plate", sort=False):
        chans = [c[len("Path_"):] for c in grp.columns if c.startswith("Path_") and c != "Path_Stack"
                 and grp[c].notna().all()]
        if "Stack_Channels" in grp.columns and grp["Stack_Channels"].notna().any():
            chans = str(grp["Stack_Channels"].dropna().iloc[0]).split("|")
        order = {c: i for i, c in enumerate(["DNA", "ER", "RNA", "AGP", "Mito"])}
        data.channels[str(plate)] = sorted(chans, key=lambda c: order.get(c, len(order)))
    _load_thumbs(data, workers)
    return data


def _merge_profile_labels(sites: pd.DataFrame, run: Path) -> pd.DataFrame:
    """Treatment labels that reached only the well profiles (``profile --platemap``) joined onto the sites by plate
    and well; a label the index lacks or leaves empty is filled, one the index has is kept."""
    import pyarrow.parquet as pq

    d = run / "profiles"
    keys = ["Metadata_Plate", "Metadata_Well"]
    for path in sorted(d.glob("*.parquet")) if d.is_dir() else []:
        try:
            names = pq.read_schema(path).names
        except Exception:  # listed as unreadable in the overview
            continue
        if not all(k in names for k in keys):
            continue
        dose = N.dose_column(names)
        wanted = [c for c in META_SHOWN + ([dose] if dose else []) if c in names and c not in keys]
        fill = [c for c in dict.fromkeys(wanted) if c not in sites.columns or sites[c].isna().any()]
        if not fill:
            continue
        lab = pq.read_table(path, columns=keys + fill).to_pandas().astype({k: str for k in keys})
        lab = lab.drop_duplicates(keys).rename(columns={c: f"{c}__profile" for c in fill})
        sites = sites.astype({k: str for k in keys}).merge(lab, on=keys, how="left")
        for c in fill:
            new = sites.pop(f"{c}__profile")
            sites[c] = sites[c].where(sites[c].notna(), new) if c in sites.columns else new
    return sites


def _load_thumbs(data: PlateData, workers: int) -> None:
    rows = [r for _, r in data.sites.iterrows() if data.channels.get(str(r["Metadata_Plate"]))]

    def one(r):
        k = _key(r)
        return I.load_thumb(r, data.channels[k[0]], data.thumb_px, data.masks.get(k))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for t in pool.map(one, rows):
            data.thumbs[(t.plate, t.well, t.site)] = t
    for plate in data.channels:
        data.ranges[plate] = I.plate_ranges([t for k, t in data.thumbs.items() if k[0] == plate])
    bad = [t for t in data.thumbs.values() if t.error]
    if bad:
        data.notes.append(f"{len(bad)} site image(s) could not be read, e.g. {bad[0].plate}/{bad[0].well}/"
                          f"{bad[0].site}: {bad[0].error}")


# --- per-well numbers -----------------------------------------------------------------------------------------

def well_numbers(data: PlateData, run: Path, retrieval: dict[str, dict]) -> pd.DataFrame:
    """Per (plate, well): sites, failed sites, cells, focus, saturation, distance to DMSO, treatment mAP."""
    s = data.sites.copy()
    s["focus"] = [data.thumbs[_key(r)].focus if _key(r) in data.thumbs else np.nan for _, r in s.iterrows()]
    s["saturated"] = [data.thumbs[_key(r)].saturated if _key(r) in data.thumbs else np.nan for _, r in s.iterrows()]
    unread = np.array([bool(data.thumbs.get(_key(r)) and data.thumbs[_key(r)].error) for _, r in s.iterrows()],
                      dtype=bool)
    s["is_failed"] = (s["failed"] != "").to_numpy() | unread
    g = s.groupby(["Metadata_Plate", "Metadata_Well"], sort=False)
    wells = g.agg(sites=("Metadata_Site", "size"), failed_sites=("is_failed", "sum"),
                  cells=("Count_Cells", lambda x: float(x.sum()) if x.notna().any() else np.nan),
                  focus=("focus", "mean"), saturated=("saturated", "max")).reset_index()
    wells["failed_fraction"] = wells["failed_sites"] / wells["sites"]
    dose = N.dose_column(s.columns)
    meta_cols = list(dict.fromkeys([c for c in META_SHOWN if c in s.columns] + ([dose] if dose else [])))
    wells = wells.merge(g[meta_cols].first().reset_index(), on=["Metadata_Plate", "Metadata_Well"], how="left")
    wells = _add_activity(wells, run, retrieval, data)
    return wells


def _profiles_choice(run: Path) -> tuple[str, Path] | None:
    d = run / "profiles"
    if not d.is_dir():
        return None
    tables = {p.stem: p for p in sorted(d.glob("*.parquet"))}
    for name in ("deep", "classical", *tables):
        if name in tables:
            return name, tables[name]
    return None


def _add_activity(wells: pd.DataFrame, run: Path, retrieval: dict[str, dict], data: PlateData) -> pd.DataFrame:
    from stratonet.evaluate.retrieval import treatment_key
    from stratonet.core.tables import feature_columns, read_table

    wells = wells.assign(distance=np.nan, distance_q=np.nan, n_negcon=np.nan, map=np.nan, map_q=np.nan)
    choice = _profiles_choice(run)
    if choice is None:
        data.notes.append("activity: no profiles/*.parquet in this run, so no distance to DMSO or mAP per well")
        return wells
    name, path = choice
    data.activity_set = name
    prof = read_table(path)
    if "Metadata_Well" not in prof.columns or "Metadata_Plate" not in prof.columns:
        data.notes.append(f"activity: profiles/{path.name} has no Metadata_Plate / Metadata_Well")
        return wells
    prof = prof.drop_duplicates(["Metadata_Plate", "Metadata_Well"])
    feats = [c for c in feature_columns(prof) if prof[c].notna().all()]
    dist = P.distance_to_negcon(prof, feats)
    dist = dist.rename(columns={"q": "distance_q"}).drop(columns=["p"])
    wells = wells.drop(columns=["distance", "distance_q", "n_negcon"]).merge(
        dist, on=["Metadata_Plate", "Metadata_Well"], how="left")
    source = _map_source(run, name, retrieval, prof)
    if source is not None:
        tab, tcols, what = source
        keys = prof[["Metadata_Plate", "Metadata_Well"]].assign(
            Metadata_treatment=treatment_key(prof, tcols).astype(str).values)
        scored = tab[["Metadata_treatment", "mean_average_precision", "corrected_p_value"]]
        # a CSV reads numeric treatment keys (e.g. a dose index) back as numbers: compare them as text
        keys = keys.merge(scored.assign(Metadata_treatment=scored["Metadata_treatment"].astype(str)),
                          on="Metadata_treatment", how="left")
        keys = keys.rename(columns={"mean_average_precision": "map", "corrected_p_value": "map_q"})
        wells = wells.drop(columns=["map", "map_q"]).merge(keys.drop(columns=["Metadata_treatment"]),
                                                           on=["Metadata_Plate", "Metadata_Well"], how="left")
        data.map_source = what
    else:
        others = sorted(set(retrieval) - {name})
        data.notes.append(f"mAP per well: neither evaluate retrieval nor evaluate assay scored the {name} profiles"
                          + (f" (evaluate retrieval ran on {', '.join(others)})" if others else
                             f" (run stratonet evaluate retrieval profiles/{name}.parquet)"))
    return wells


def _map_source(run: Path, name: str, retrieval: dict[str, dict], prof: pd.DataFrame):
    """Per-treatment phenotypic-activity mAP for the ``name`` profiles: evaluate retrieval's map_activity.csv, else
    evaluate assay's hits_vs_map.csv (the same copairs mAP). Returns (table with Metadata_treatment,
    mean_average_precision, corrected_p_value; treatment columns; where it came from) or None."""
    ret_dir = run / "evaluate" / "retrieval" / name
    m = retrieval.get(name) or {}
    if (ret_dir / "map_activity.csv").exists() and m.get("treatment"):
        tab = pd.read_csv(ret_dir / "map_activity.csv")
        tcols = [c for c in m["treatment"] if c in prof.columns]
        if tcols and "Metadata_treatment" in tab.columns:
            return tab, tcols, f"evaluate retrieval ({name})"
    from stratonet.core.tables import read_provenance

    assay_root = run / "evaluate" / "assay"
    aliases = [name, str(read_provenance(run / "profiles" / f"{name}.parquet").get("feature_set") or name)]
    ad = next((assay_root / a for a in aliases if (assay_root / a / "metrics.json").exists()), assay_root / name)
    if (ad / "hits_vs_map.csv").exists() and (ad / "metrics.json").exists():
        am = json.loads((ad / "metrics.json").read_text())
        tcols = [c for c in (am.get("compound_column"), am.get("dose_column")) if c and c in prof.columns]
        tab = pd.read_csv(ad / "hits_vs_map.csv")
        if tcols and {"Metadata_treatment", "mean_average_precision"} <= set(tab.columns):
            q = next((c for c in ("map_q_value", "corrected_p_value") if c in tab.columns), None)
            tab = tab.assign(corrected_p_value=tab[q] if q else np.nan)
            return tab, tcols, f"evaluate assay ({name})"
    return None


# --- plate maps + viewer --------------------------------------------------------------------------------------

def _treatment(row) -> str:
    """``compound @ dose unit`` of a well or site (the compound alone without a dose column); "unknown" only when
    neither the index, the feature tables nor the profiles name a treatment."""
    dose = N.dose_column(row.index)
    for c in TREATMENT_NAMES:
        if c in row and pd.notna(row[c]):
            d = row[dose] if dose and pd.notna(row[dose]) else None
            return N.treatment_label(row[c], d, N.dose_unit(dose))
    if dose and pd.notna(row[dose]):
        return N.treatment_label("dose", row[dose], N.dose_unit(dose))
    return "unknown (no treatment metadata)"


def control_type(value) -> str:
    """A control label in the report's terms: negcon / poscon / trt, or the value itself when it is none of those."""
    if value is None or pd.isna(value):
        return "unknown"
    v = str(value)
    return CONTROL_ALIASES.get(v.lower(), v)


def _numbers(w) -> dict[str, str]:
    def f(v, d=3):
        return H.fmt(float(v), d) if v is not None and pd.notna(v) else "–"

    out = {"sites": f"{int(w['sites'])} ({int(w['failed_sites'])} failed)",
           "cells": f(w["cells"], 0) if pd.notna(w["cells"]) else "– (no classical site table with Count_Cells)",
           "focus (DNA, norm. Laplacian var.)": f(w["focus"]), "saturated pixels (worst channel)": f(w["saturated"], 4)}
    if pd.notna(w.get("distance")):
        q = P.fmt_p(w["distance_q"]) if pd.notna(w["distance_q"]) else "– (a control: part of the null)"
        out["distance to DMSO (RMS)"] = f"{f(w['distance'])} (q = {q}, n negcon = {int(w['n_negcon'])})"
    if pd.notna(w.get("map")):
        out["treatment mAP vs negcon"] = f"{f(w['map'])} (q = {P.fmt_p(w['map_q'])})"
    return out


def _layout_maps(plate: str, fmt: int, by: pd.DataFrame, tip: dict[str, str], sid: str, kw: dict) -> list[str]:
    """The plate's two layout maps: control type and treatment (the first 20 treatments coloured)."""
    maps = []
    ctype = by["Metadata_control_type"].map(control_type) if "Metadata_control_type" in by else \
        pd.Series("unknown", index=by.index)
    maps.append(P.plate_svg(plate, fmt, ctype.to_dict(), "layout: control type",
                            P.PlateStyle(kind="categorical", categories={k: P.CONTROL_COLOURS.get(k, "#cccccc")
                                                                         for k in sorted(set(ctype))},
                                         map_id=f"map-{sid}-layout"), labels=tip, **kw))
    treat = {w: _treatment(r) for w, r in by.iterrows()}
    cats = P.category_colours(N.sort_treatments(set(treat.values())))
    if len(cats) > 20:
        parts_note = f" ({len(cats)} treatments: the first 20 coloured, the rest grey)"
    else:
        parts_note = ""
    maps.append(P.plate_svg(plate, fmt, treat, "layout: treatment" + parts_note,
                            P.PlateStyle(kind="categorical", categories=cats if len(cats) <= 20 else
                                         {k: v for k, v in list(cats.items())[:20]},
                                         map_id=f"map-{sid}-treatment"), labels=tip, **kw))
    return maps


def plates_section(data: PlateData | None, run: Path) -> str:
    """Plate maps per plate (layout, cells, QC, activity), the click-to-open viewer and its embedded data."""
    if data is None:
        return H.not_run("not run: no index table (index.parquet or index/*.parquet) in this run, so no plate maps")
    wells = data.wells
    parts, viewer = [], {"channels": {}, "plates": {}}
    for plate, pw in wells.groupby("Metadata_Plate", sort=False):
        plate = str(plate)
        fmt = P.plate_format(pw["Metadata_Well"])
        present = set(pw["Metadata_Well"].astype(str))
        rows, cols = P.FORMATS[fmt]
        allw = {f"{P.row_name(r)}{c + 1:02d}" for r in range(rows) for c in range(cols)}
        empty = allw - present
        failed = set(pw.loc[pw["failed_sites"] >= pw["sites"], "Metadata_Well"].astype(str))
        by = pw.set_index(pw["Metadata_Well"].astype(str))
        tip = {w: f"{w}: {_treatment(r)} ({control_type(r.get('Metadata_control_type'))})" for w, r in by.iterrows()}

        def tipped(col, label, digits=3):
            return {w: f"{tip[w]}\n{label}: {H.fmt(float(v), digits) if pd.notna(v) else '– (no value)'}"
                    for w, v in by[col].items()}

        kw = dict(empty=empty, failed=failed)
        sid = "".join(ch if ch.isalnum() else "-" for ch in plate)
        maps = _layout_maps(plate, fmt, by, tip, sid, kw)
        if by["cells"].notna().any():
            maps.append(P.plate_svg(plate, fmt, by["cells"].to_dict(), "cell count (all sites)",
                                    P.PlateStyle(map_id=f"map-{sid}-cells"), labels=tipped("cells", "cells", 0), **kw))
        else:
            maps.append(H.not_run("cell count: no site table with Count_Cells (run extract classical)"))
        maps.append(P.plate_svg(plate, fmt, by["focus"].to_dict(), "QC: focus (DNA; low = blurred)",
                                P.PlateStyle(map_id=f"map-{sid}-focus", cmap_name="cividis"),
                                labels=tipped("focus", "focus"), **kw))
        maps.append(P.plate_svg(plate, fmt, by["saturated"].to_dict(), "QC: saturated pixel fraction",
                                P.PlateStyle(map_id=f"map-{sid}-saturation", cmap_name="OrRd"),
                                labels=tipped("saturated", "saturated", 4), **kw))
        maps.append(P.plate_svg(plate, fmt, by["failed_fraction"].to_dict(), "QC: fraction of failed sites",
                                P.PlateStyle(vmin=0, vmax=1, map_id=f"map-{sid}-failed", cmap_name="Reds"),
                                labels=tipped("failed_fraction", "failed fraction"), **kw))
        if by["distance"].notna().any():
            sig = {w: "*" for w, q in by["distance_q"].items() if pd.notna(q) and q < 0.05}
            n_neg = int(by["n_negcon"].max())
            maps.append(P.plate_svg(plate, fmt, by["distance"].to_dict(),
                                    f"activity: RMS distance to DMSO median ({data.activity_set} profiles; dot: q < 0.05)",
                                    labels={w: t + f" (q = {P.fmt_p(by.loc[w, 'distance_q'])})"
                                            for w, t in tipped("distance", "distance").items()},
                                    marks=sig, style=P.PlateStyle(map_id=f"map-{sid}-distance", cmap_name="plasma"),
                                    **kw))
            if n_neg + 1 < 20:
                data.notes.append(f"plate {plate}: distance-to-DMSO p-values rest on {n_neg} negative-control wells;"
                                  f" the smallest attainable p is 1/{n_neg + 1} = {1 / (n_neg + 1):.2f}, so no well can"
                                  " reach q < 0.05")
        if by["map"].notna().any():
            sig = {w: "*" for w, q in by["map_q"].items() if pd.notna(q) and q < 0.05}
            maps.append(P.plate_svg(plate, fmt, by["map"].to_dict(),
                                    f"activity: treatment mAP vs negcon ({data.map_source}; dot: q < 0.05)",
                                    labels={w: t + f" (q = {P.fmt_p(by.loc[w, 'map_q'])})"
                                            for w, t in tipped("map", "mAP").items()},
                                    marks=sig, style=P.PlateStyle(vmin=0, vmax=1, map_id=f"map-{sid}-map",
                                                                  cmap_name="plasma"), **kw))
        n_failed_sites = int(pw["failed_sites"].sum())
        zero = sorted(pw.loc[pw["cells"] == 0, "Metadata_Well"].astype(str))
        if zero:
            data.notes.append(f"plate {plate}: {len(zero)} well(s) with 0 cells segmented: {', '.join(zero[:12])}"
                              + (" ..." if len(zero) > 12 else ""))
        if n_failed_sites:
            data.notes.append(f"plate {plate}: {n_failed_sites} failed site(s) in {int((pw['failed_sites'] > 0).sum())}"
                              " well(s) (crossed when every site of a well failed; see the viewer for the reason)")
        parts.append(f"<h3>Plate {H.esc(plate)} ({fmt}-well format: {len(present)} well(s) with sites, "
                     f"{len(empty)} empty, {len(failed)} failed, {n_failed_sites} failed site(s))</h3>"
                     f'<div class="platemaps">{"".join(maps)}</div>')
        viewer["channels"][plate] = [[c, I.hex_colour(col)]
                                     for c, col in I.channel_colours(data.channels.get(plate, [])).items()]
        viewer["plates"][plate] = _viewer_wells(data, plate, by)
        oc = I.outline_colours(data.channels.get(plate, []))
        viewer.setdefault("outlines", {})[plate] = {k: [name, I.hex_colour(rgb)] for k, (name, rgb) in oc.items()}
    full_html = _full_resolution(data, viewer)
    if full_html:
        from stratonet.report.cells import cell_picks

        viewer["cells"] = cell_picks(run, data.channels)
    notes = "".join(f'<p class="warn">{H.esc(n)}</p>' for n in data.notes)
    legend = ('<p class="muted">Empty wells (no sites in the index) are light grey; a red cross marks a well whose '
              "every site failed; white means no value. Hover a well for its numbers; click it to open its sites "
              "below (or add <code>#well=B02</code> to the address).</p>")
    payload = json.dumps(viewer, separators=(",", ":")).replace("</", "<\\/")
    return (legend + notes + "".join(parts)
            + '<div id="viewer"><p class="muted">Click a well on a plate map to see its sites here.</p></div>'
            + f'<script type="application/json" id="viewer-data">{payload}</script>{full_html}<script>{JS}</script>')


def full_edge(data: PlateData) -> int:
    """Long edge (px) of the embedded site images: the stored size when the whole run fits
    :data:`FULLRES_BUDGET`, else the largest edge that does (never below 256 px)."""
    ok = [t for t in data.thumbs.values() if not t.error and t.native[0]]
    if not ok:
        return 0
    native = max(max(t.native) for t in ok)
    total = sum(t.native[0] * t.native[1] * t.planes.shape[0] for t in ok)
    if total <= FULLRES_BUDGET:
        return native
    return max(256, int(native * (FULLRES_BUDGET / total) ** 0.5))


def _full_resolution(data: PlateData, viewer: dict, workers: int = 2) -> str:
    """Every readable site at :func:`full_edge` px, one ``<script type="text/plain">`` per site that the viewer
    parses only when the site is enlarged (lazy: the page opens as fast as without them)."""
    edge = full_edge(data)
    viewer["full_edge"] = edge
    if not edge:
        return ""
    rows = [r for _, r in data.sites.iterrows() if _key(r) in data.thumbs and not data.thumbs[_key(r)].error]
    native = max(max(data.thumbs[_key(r)].native) for r in rows)
    if edge < native:
        data.notes.append(f"enlarged site view: images embedded at {edge} px of the stored {native} px, to keep "
                          f"the report under ~{FULLRES_BUDGET // 10 ** 6} MB of images ({len(rows)} sites)")

    def one(r):
        k = _key(r)
        return k, I.full_site(r, data.channels[k[0]], data.ranges.get(k[0]), edge, data.masks.get(k))

    blocks = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, (k, rec) in enumerate(pool.map(one, rows)):
            sid = f"site-full-{i}"
            for s in viewer["plates"].get(k[0], {}).get(k[1], {}).get("sites", []):
                if s["site"] == k[2]:
                    s["full"] = sid
            body = json.dumps(rec, separators=(",", ":")).replace("</", "<\\/")
            blocks.append(f'<script type="text/plain" id="{sid}">{body}</script>')
    return "".join(blocks)


def _meta_columns(columns) -> list[str]:
    """The metadata shown for a well: :data:`META_SHOWN` and the dose column."""
    dose = N.dose_column(columns)
    return list(dict.fromkeys([c for c in META_SHOWN if c in columns] + ([dose] if dose else [])))


def _meta_text(column: str, value) -> str:
    """A metadata value as shown: a dose with its unit, a control type in the report's terms, other values as is."""
    if column == N.dose_column([column]):
        return N.fmt_dose(value, N.dose_unit(column))
    if column == "Metadata_control_type":
        return control_type(value) + ("" if control_type(value) == str(value) else f" ({value})")
    return N.fmt_value(value)


def _viewer_wells(data: PlateData, plate: str, by: pd.DataFrame) -> dict:
    out = {}
    sites = data.sites[data.sites["Metadata_Plate"].astype(str) == plate]
    ranges = data.ranges.get(plate)
    for well, grp in sites.groupby("Metadata_Well", sort=True):
        w = by.loc[str(well)]
        meta = {c.removeprefix("Metadata_"): _meta_text(c, w[c]) for c in _meta_columns(w.index)
                if pd.notna(w[c])}
        recs = []
        for _, r in grp.iterrows():
            t = data.thumbs.get(_key(r))
            rec = {"site": str(r["Metadata_Site"])}
            notes = []
            if pd.notna(r.get("Count_Cells")):
                notes.append(f"{int(r['Count_Cells'])} cells")
            if r["failed"]:
                notes.append(f"failed: {r['failed']}")
            rec["note"] = ", ".join(notes)
            if t is None or t.error:
                rec["error"] = t.error if t else "no channels"
            else:
                rec["src"] = I.encode(I.sprite(I.scale_planes(t.planes, ranges)), quality=75)
                if t.outlines:
                    rec["outlines"] = I.encode(I.outline_layer(t.outlines, t.planes.shape[1:]), fmt="PNG")
            recs.append(rec)
        out[str(well)] = {"meta": meta, "numbers": _numbers(w), "sites": recs}
    return out


# --- representative images ------------------------------------------------------------------------------------

def _channel_legend(plate_channels: list[str]) -> str:
    cols = I.channel_colours(plate_channels)
    return '<div class="chlegend">' + "".join(f'<i style="background:{I.hex_colour(c)}"></i>{H.esc(ch)}'
                                              for ch, c in cols.items()) + "</div>"


def _site_table_for_montage(run: Path) -> tuple[str, pd.DataFrame] | None:
    from stratonet.core.tables import feature_columns, read_table

    tables = _site_tables(run)
    for name in ("deep", "classical", "pixel", *tables):
        if name in tables:
            df = read_table(tables[name])
            feats = [c for c in feature_columns(df) if df[c].notna().all() and df[c].std() > 0]
            if feats:
                return name, df[[c for c in df.columns if c.startswith("Metadata_")] + feats]
    return _well_profiles_for_montage(run)


def _well_profiles_for_montage(run: Path) -> tuple[str, pd.DataFrame] | None:
    """Without a site table, the well profiles: each well stands for its first site (``<name> well profiles``)."""
    from stratonet.core.tables import feature_columns, read_table

    choice = _profiles_choice(run)
    if choice is None:
        return None
    name, path = choice
    df = read_table(path)
    if not {"Metadata_Plate", "Metadata_Well"} <= set(df.columns):
        return None
    feats = [c for c in feature_columns(df) if df[c].notna().all() and df[c].std() > 0]
    if not feats:
        return None
    df = df[[c for c in df.columns if c.startswith("Metadata_")] + feats].drop_duplicates(
        ["Metadata_Plate", "Metadata_Well"])
    return f"{name} well", df.assign(Metadata_Site=df.get("Metadata_Site", "__first__"))


def representative_sites(df: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    """Per treatment (compound + dose), the site nearest the treatment's median profile.

    Features are robust-z-scored over all sites first so no feature dominates by its scale.

    Returns
    -------
    DataFrame
        ``treatment, Metadata_Plate, Metadata_Well, Metadata_Site, n_sites, distance``.
    """
    from stratonet.core.tables import feature_columns

    feats = feature_columns(df)
    df = df.copy()
    df["Metadata_Site"] = df["Metadata_Site"].astype(str)
    if (df["Metadata_Site"] == "__first__").any():  # well profiles: each well shown by its first site
        first = sites.astype({k: str for k in SITE_KEYS}).drop_duplicates(["Metadata_Plate", "Metadata_Well"])
        df = df.drop(columns=["Metadata_Site"]).astype({"Metadata_Plate": str, "Metadata_Well": str}).merge(
            first[SITE_KEYS], on=["Metadata_Plate", "Metadata_Well"], how="inner")
    keep = set(map(tuple, sites[SITE_KEYS].astype(str).to_numpy()))
    df = df[[tuple(x) in keep for x in df[SITE_KEYS].astype(str).to_numpy()]]
    comp = next((c for c in TREATMENT_NAMES if c in df.columns or c in sites.columns), None)
    dose = N.dose_column(list(df.columns) + list(sites.columns))
    if comp is None and dose is None:
        return pd.DataFrame()
    missing = [c for c in (comp, dose) if c and c not in df.columns]
    if missing:  # labels from the index or the profiles (see _merge_profile_labels)
        df = df.merge(sites[SITE_KEYS + missing].astype({k: str for k in SITE_KEYS}), on=SITE_KEYS, how="left")
    unit = N.dose_unit(dose)
    compounds = df[comp] if comp else ["dose"] * len(df)  # a one-compound dose series: named by its dose, as the maps
    name = pd.Series([N.treatment_label(c, d if dose else None, unit)
                      for c, d in zip(compounds, df[dose] if dose else [None] * len(df))], index=df.index)
    X = df[feats].to_numpy(np.float64)
    med = np.median(X, axis=0)
    mad = np.median(np.abs(X - med), axis=0) * 1.4826
    Z = (X - med) / np.where(mad > 0, mad, 1.0)
    rows = []
    groups = dict(list(pd.Series(np.arange(len(df))).groupby(name.to_numpy())))
    for t in N.sort_treatments(groups):
        idx = groups[t]
        z = Z[idx.to_numpy()]
        d = np.linalg.norm(z - np.median(z, axis=0), axis=1)
        best = idx.to_numpy()[int(np.argmin(d))]
        r = df.iloc[best]
        rows.append({"treatment": t, "Metadata_Plate": str(r["Metadata_Plate"]), "Metadata_Well": str(r["Metadata_Well"]),
                     "Metadata_Site": str(r["Metadata_Site"]), "n_sites": len(idx), "distance": float(d.min())})
    return pd.DataFrame(rows)


def images_section(data: PlateData | None, run: Path, px: int = 208, strip_px: int = 96) -> str:
    """Per treatment, a colour composite of its representative site (with outlines where masks exist) and
    single-channel strips; the bundled or any other single-site plate is shown the same way."""
    if data is None:
        return H.not_run("not run: no index table in this run, so no images")
    found = _site_table_for_montage(run)
    parts = []
    reps = representative_sites(*found[1:], data.sites) if found is not None else pd.DataFrame()
    if found is not None and reps.empty:
        parts.append(H.not_run(f"no treatment labels in the index, the {found[0]} site table or the profiles, so "
                               "sites are not grouped by treatment; the first wells are shown below"))
    if not reps.empty:
        name = found[0]
        shown_plates = set(reps["Metadata_Plate"])
        note = ""
        if len(reps) > MAX_MONTAGE:
            note = f" Showing the first {MAX_MONTAGE} of {len(reps)} treatments."
            reps = reps.head(MAX_MONTAGE)
        unit = "wells" if name.endswith(" well") else "sites"
        parts.append(f"<p>Per treatment (compound and dose), the {unit[:-1]} nearest the treatment's median "
                     f"<b>{H.esc(name)}</b> profile (robust z-scores over all {unit}; a well shown by its first "
                     f"site); n = {unit} of that treatment. "
                     f"Composite colours per channel as in the legend; intensities scaled per plate and channel, "
                     f"so brightness compares across wells (raw images: no illumination correction).{note}</p>")
        parts.append(_montage(data, reps.assign(unit=unit[:-1]), px, strip_px))
    else:
        shown_plates = set()
        if found is None:
            parts.append(H.not_run("no site-level feature table (features/*.parquet), so no representative sites"))
    rest = data.sites[~data.sites["Metadata_Plate"].astype(str).isin(shown_plates)]
    if not rest.empty:  # e.g. a single real field of view that is not profiled
        first = rest.drop_duplicates(["Metadata_Plate", "Metadata_Well"]).head(12)
        others = first[SITE_KEYS].astype(str).assign(treatment=[_treatment(r) for _, r in first.iterrows()],
                                                     n_sites=1, distance=np.nan)
        title = ("Other plates (no treatment profiles)" if shown_plates else
                 "Plates without treatment profiles (first wells, one site each)")
        parts.append(f"<h3>{title}</h3>" + _montage(data, others, px, strip_px, box_id="montage-other"))
    return "".join(parts)


def _montage(data: PlateData, reps: pd.DataFrame, px: int, strip_px: int, box_id: str = "montage") -> str:
    items = []
    cache: dict[str, dict] = {}
    for _, r in reps.iterrows():
        k = (r["Metadata_Plate"], r["Metadata_Well"], r["Metadata_Site"])
        site = data.sites[(data.sites["Metadata_Plate"].astype(str) == k[0])
                          & (data.sites["Metadata_Well"].astype(str) == k[1])
                          & (data.sites["Metadata_Site"].astype(str) == k[2])]
        chans = data.channels.get(k[0], [])
        if site.empty or not chans:
            continue
        t = I.load_thumb(site.iloc[0], chans, px, data.masks.get(k))
        if t.error:
            items.append(H.not_run(f"{'/'.join(k)}: {t.error}"))
            continue
        ranges = data.ranges.get(k[0])
        scaled = I.scale_planes(t.planes, ranges)
        cols = list(I.channel_colours(chans).values())
        rgb = I.draw_outlines(I.composite(scaled, cols), t.outlines, chans)
        small = [I.downsample(p, strip_px) for p in scaled]
        strip = "".join(f'<figure><img alt="{H.esc(ch)}" src="{I.encode((np.clip(s, 0, 1) * 255).astype(np.uint8))}">'
                        f"<figcaption>{H.esc(ch)}</figcaption></figure>" for ch, s in zip(chans, small))
        outl = f" · outlines: {I.outline_legend(chans)}" if t.outlines else ""
        cache[k[0]] = cache.get(k[0]) or {"legend": _channel_legend(chans)}
        items.append(f'<figure class="rep"><img class="rep-img" data-site="{H.esc("/".join(k))}" '
                     f'title="click to enlarge" alt="{H.esc(r["treatment"])}" width="{rgb.shape[1]}" '
                     f'src="{I.encode(rgb)}"><figcaption><b>{H.esc(r["treatment"])}</b> · {H.esc("/".join(k))} · '
                     f"n = {int(r['n_sites'])} {r.get('unit', 'site')}(s){outl}</figcaption>{cache[k[0]]['legend']}"
                     f'<div class="strip">{strip}</div></figure>')
    return f'<div class="montage" id="{box_id}">{"".join(items)}</div>' if items else H.not_run("no images read")


# --- classifier examples --------------------------------------------------------------------------------------

def classifier_examples(data: PlateData | None, classify_dirs: dict[str, Path], top: int = 4, px: int = 120) -> str:
    """The most confidently right and wrong test wells per feature set, from ``predictions_<clf>.csv``."""
    parts = []
    for fs, d in classify_dirs.items():
        preds = {p.stem.removeprefix("predictions_"): p for p in sorted(d.glob("predictions_*.csv"))}
        with_p = {c: p for c, p in preds.items() if "probability" in pd.read_csv(p, nrows=1).columns}
        if not with_p:
            parts.append(H.not_run(f"{fs}: no predictions with probabilities (predictions_<clf>.csv from "
                                   "evaluate classify)"))
            continue
        clf = next((c for c in ("logreg", "rf", "mlp") if c in with_p), next(iter(with_p)))
        t = pd.read_csv(with_p[clf]).dropna(subset=["probability"])
        right = t[t["true"] == t["predicted"]].nlargest(top, "probability")
        wrong = t[t["true"] != t["predicted"]].nlargest(top, "probability")
        small = " (fewer than 30: anecdotes, not a measurement)" if len(t) < 30 else ""
        parts.append(f"<h4>{H.esc(fs)}: {H.esc(clf)} (test set: {len(t)} samples{small})</h4>")
        for title, rows in (("most confidently right", right), ("most confidently wrong", wrong)):
            cards = [_example_card(data, r, px) for _, r in rows.iterrows()]
            body = "".join(cards) if cards else H.not_run(f"none: no {title.split()[-1]} prediction in the test set")
            parts.append(f"<p><b>{title}</b></p><div class=\"examples\">{body}</div>")
    if not parts:
        return ""
    return "<h3>Classifier examples</h3>" + "".join(parts)


def _example_card(data: PlateData | None, r, px: int) -> str:
    caption = (f"{H.esc(r.get('Metadata_Plate', ''))}/{H.esc(r.get('Metadata_Well', ''))}: true "
               f"<b>{H.esc(r['true'])}</b>, predicted <b>{H.esc(r['predicted'])}</b> (p = {float(r['probability']):.2f})")
    img = ""
    if data is not None and "Metadata_Well" in r:
        sel = data.sites[(data.sites["Metadata_Plate"].astype(str) == str(r.get("Metadata_Plate")))
                         & (data.sites["Metadata_Well"].astype(str) == str(r["Metadata_Well"]))]
        if "Metadata_Site" in r and pd.notna(r.get("Metadata_Site")):
            sel = sel[sel["Metadata_Site"].astype(str) == str(r["Metadata_Site"])]
        for _, s in sel.head(1).iterrows():
            t = data.thumbs.get(_key(s))
            if t is not None and not t.error:
                cols = list(I.channel_colours(data.channels[t.plate]).values())
                rgb = I.draw_outlines(I.composite(I.scale_planes(t.planes, data.ranges[t.plate]), cols), t.outlines,
                                      data.channels[t.plate])
                img = f'<img alt="{H.esc(r["Metadata_Well"])}" width="{min(px, rgb.shape[1])}" src="{I.encode(rgb)}">'
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"
