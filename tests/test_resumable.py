"""PartitionedWriter and ErrorLog: parts, resume keys, streamed merge."""

from __future__ import annotations

import pandas as pd

from stratonet.resumable import ErrorLog, PartitionedWriter


def _rows(wells, value=1.0):
    return pd.DataFrame({"Metadata_Plate": "P", "Metadata_Well": wells, "Metadata_Site": 1, "f": value})


def test_parts_resume_and_finalize(tmp_path):
    out = tmp_path / "t.parquet"
    w = PartitionedWriter(out, rows_per_part=2)
    w.write(_rows(["A01", "A02"]))  # flushed: full part
    w.write(_rows(["A03"]))  # buffered only
    assert w.done_keys() == {("P", "A01", "1"), ("P", "A02", "1")}
    w2 = PartitionedWriter(out, rows_per_part=2)  # a rerun after an interruption sees the flushed part
    assert len(w2.done_keys()) == 2
    w2.write(_rows(["A03", "A04"]))
    w2.finalize()
    df = pd.read_parquet(out)
    assert sorted(df.Metadata_Well) == ["A01", "A02", "A03", "A04"]
    assert not (tmp_path / "t.parquet.parts").exists()
    w3 = PartitionedWriter(out)
    assert len(w3.done_keys()) == 4
    w3.write(_rows(["A05"], value=2))
    w3.finalize()
    assert len(pd.read_parquet(out)) == 5


def test_error_log(tmp_path):
    log = ErrorLog(tmp_path / "x.errors.parquet")
    assert log.save() is None and len(log) == 0
    log.add("P/A01/1", "index", "bad file", plate="P")
    p = log.save()
    assert p == tmp_path / "x.errors.csv"
    df = pd.read_csv(p)
    assert list(df.columns) == ["site", "stage", "error", "plate"] and df.iloc[0]["error"] == "bad file"
    assert (tmp_path / "x.errors.parquet").exists()
