"""Issue 26: every number in the report formatted for its kind (report/numbers.py), and CPU % that is measured."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from stratonet.report import html as H
from stratonet.report import numbers as N


def test_numbers_by_kind():
    assert N.fmt_num(1.0) == "1" and N.fmt_num(43.0) == "43"  # integers as integers
    assert N.fmt_num(0.02682695795279726) == "0.0268" and N.fmt_num(-4.88000940210738) == "-4.88"
    assert N.fmt_num(0.9999) == "1.000"  # never a falsely exact 1
    assert N.fmt_p(3.2e-5) == "3.2e-05" and N.fmt_p(0.3168) == "0.32" and N.fmt_p(0.0) == "0"
    assert N.fmt_sci(1e-4) == "1.0e-04"  # a learning rate is never 0.000
    assert N.column_kind("map_q_value") == "p" and N.column_kind("lr") == "sci" and N.column_kind("epoch") == "int"
    assert N.column_kind("fraction_hits") == "num" and N.column_kind("accuracy") == "num"


def test_table_formats_each_column_by_its_kind():
    df = pd.DataFrame({"epoch": [1.0, 2.0], "lr": [1e-4, 5e-5], "val_loss": [0.123456, 0.0456789],
                       "p_value": [0.0001234, 0.5], "cells": [43.0, np.nan]})
    html = H.table(df, text_columns=0)
    cells = [c.split("<")[0] for c in html.split('<td class="">')[1:]]
    assert cells[:5] == ["1", "1.0e-04", "0.123", "1.2e-04", "43"], cells
    assert "0.000" not in html and "1.000" not in html and "43.000" not in html


def test_doses_with_units_sorted_numerically():
    assert N.treatment_label("thapsigargin", 0.02682695795279726) == "thapsigargin @ 0.0268 µM"
    assert N.dose_unit("Metadata_dose_index") == "dose index" and N.dose_unit("Metadata_concentration_nM") == "nM"
    assert N.treatment_label("PI3Ki", 3, "dose index") == "PI3Ki @ dose index 3"
    assert N.sort_treatments(["a@10", "a@0.3", "a@2", "DMSO"]) == ["DMSO", "a@0.3", "a@2", "a@10"]
    labels = ["x @ 10 µM", "x @ 0.3 µM", "x @ 2 µM"]
    assert N.sort_treatments(labels) == ["x @ 0.3 µM", "x @ 2 µM", "x @ 10 µM"]
    assert N.dose_column(["Metadata_Well", "Metadata_dose_index"]) == "Metadata_dose_index"


def test_colour_bar_of_one_value_says_so():
    from stratonet.report.plates import plate_svg

    svg = plate_svg("P", 96, {"A01": 0.0, "A02": 0.0}, "saturated")
    assert "every well with a value: 0" in svg and "0.000" not in svg


def test_outline_colours_are_not_channel_colours():
    from stratonet.report import images as I

    for chans in (["DNA", "ER", "RNA", "AGP", "Mito"], ["DNA", "GFP"], ["AGP", "RNA", "DNA"]):
        used = {I.hex_colour(c) for c in I.channel_colours(chans).values()}
        oc = I.outline_colours(chans)
        assert not {I.hex_colour(rgb) for _, rgb in oc.values()} & used
        assert oc["Nuclei"][0] != oc["Cells"][0]
    assert "yellow" not in I.outline_legend(["DNA", "ER", "RNA", "AGP", "Mito"])  # RNA is yellow


def test_cpu_pct_is_this_process_not_the_machine():
    from stratonet.core.runinfo import ResourceMonitor

    with ResourceMonitor(interval=0.1) as mon:
        time.sleep(0.6)  # this process idles, whatever the machine does
    s = mon.summary()
    assert s["cpu_pct_avg"] < 50, s
    assert "machine_cpu_pct_avg" in s
