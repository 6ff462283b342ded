"""PartitionedWriter and ErrorLog: parts, resume keys, streamed merge."""

from __future__ import annotations

import pandas as pd

from stratonet.runtime.resumable import ErrorLog, PartitionedWriter


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


def test_feature_columns_written_without_statistics_or_dictionary(tmp_path):
    """Parts and the merged file keep statistics (and dictionaries) for metadata columns only: float features gain
    nothing from them and they cost ~40 % of a wide table's write time."""
    import numpy as np
    import pyarrow.parquet as pq

    from stratonet.runtime.writer import WideTableWriter

    for cls in (PartitionedWriter, WideTableWriter):
        out = tmp_path / f"{cls.__name__}.parquet"
        w = cls(out, rows_per_part=2)
        for wells in (["A01", "A02"], ["A03", "A04"]):
            df = _rows(wells)
            df["f"] = np.float32([0.5, 1.5])
            w.write(df)
        w.finalize()  # two parts -> a streamed merge
        meta = pq.ParquetFile(out).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        rg = meta.row_group(0)
        well, feat = rg.column(names.index("Metadata_Well")), rg.column(names.index("f"))
        assert well.is_stats_set and well.statistics.min == "A01"
        assert not feat.is_stats_set
        assert not any("DICTIONARY" in e for e in feat.encodings)
        assert pd.read_parquet(out)["f"].tolist() == [0.5, 1.5, 0.5, 1.5]


def test_merge_groups_small_parts_into_large_row_groups(tmp_path, monkeypatch):
    """Finalize writes one row group per ~MERGE_GROUP_BYTES, not one per part (each costs a fixed time per column),
    and keeps every row in order whatever the grouping."""
    import pyarrow.parquet as pq

    import stratonet.runtime.resumable as res

    wells = [f"A{i:02d}" for i in range(1, 11)]
    tables = {}
    for limit in (res.MERGE_GROUP_BYTES, 1):  # default, and a flush after every source row group
        monkeypatch.setattr(res, "MERGE_GROUP_BYTES", limit)
        out = tmp_path / f"t{limit}.parquet"
        w = PartitionedWriter(out, rows_per_part=2)
        for a in range(0, len(wells), 2):
            w.write(_rows(wells[a: a + 2], value=float(a)))
        w.finalize()  # five parts
        groups = pq.ParquetFile(out).num_row_groups
        assert groups == (1 if limit > 1 else 5)
        tables[limit] = pd.read_parquet(out)
    a, b = tables.values()
    assert a.equals(b) and a["Metadata_Well"].tolist() == wells
