"""How well filled binary masks (CellProfiler's 0/255 Nuclei/Cells masks) are turned back into objects.

CellProfiler's own objects on the two real JUMP FOVs (its outline images, filled to labels) are rendered as filled
binary masks, where touching objects merge, then labelled again with ``read_labels`` and matched to the originals
at IoU 0.5 (and 0.8).

    PYTHONPATH=src python benchmarks/quality/filled_masks.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cytodataframe_fov"
FOVS = {
    "JUMP BR00117006 A01": ("JUMP_plate_BR00117006/images", "outlines/r01c01f01p01-ch5sk1fk1fl1_nuclei_outlines.png",
                            "outlines/r01c01f01p01-ch3sk1fk1fl1_cell_outlines.png",
                            "orig/r01c01f01p01-ch2sk1fk1fl1.tiff"),
    "pediatric BR00143976 C03 s3": ("pediatric_cancer_atlas_profiling/images",
                                    "outlines/NucleiOutlines_BR00143976_C03_3.tiff",
                                    "outlines/CellsOutlines_BR00143976_C03_3.tiff",
                                    "orig/r03c03f03p01-ch5sk1fk1fl1.tiff"),
}


def main() -> None:
    from stratonet.extract.classical.agreement import match_objects
    from stratonet.extract.classical.labels import read_labels
    from stratonet.extract.classical.run import scale_to_unit
    from stratonet.images.io import read_image

    print("| FOV | objects (CellProfiler) | mask components | nuclei F1@0.5 | cells F1@0.5 (no guide) | "
          "cells F1@0.5 / @0.8 (guide) | s |")
    print("|---|---|---|---|---|---|---|")
    for name, (folder, nuc_f, cell_f, guide_f) in FOVS.items():
        d = DATA / folder
        nuclei = read_labels(d / nuc_f)
        cells = read_labels(d / cell_f, seeds=nuclei)
        guide = scale_to_unit(read_image(d / guide_f).astype(np.float32))
        with tempfile.TemporaryDirectory() as tmp:
            nm, cm = Path(tmp) / "n.png", Path(tmp) / "c.png"
            Image.fromarray(((nuclei > 0) * 255).astype(np.uint8)).save(nm)
            Image.fromarray(((cells > 0) * 255).astype(np.uint8)).save(cm)
            t0 = time.perf_counter()
            got_n = read_labels(nm)
            got_c = read_labels(cm, seeds=got_n)
            got_cg = read_labels(cm, seeds=got_n, guide=guide)
            dt = time.perf_counter() - t0
        comps = f"{ndi.label(nuclei > 0)[1]} / {ndi.label(cells > 0)[1]}"
        f = lambda a, b, t=0.5: match_objects(a, b, t)["f1"]  # noqa: E731
        print(f"| {name} | {nuclei.max()} / {cells.max()} | {comps} | {f(got_n, nuclei):.3f} | "
              f"{f(got_c, cells):.3f} | {f(got_cg, cells):.3f} / {f(got_cg, cells, 0.8):.3f} | {dt:.1f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
