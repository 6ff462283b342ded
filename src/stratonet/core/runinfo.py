"""Run provenance: package versions, device, resources used (CPU %, memory %), wall time, file digests."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

_PACKAGES = [
    "stratonet", "numpy", "torch", "pandas", "pyarrow", "tifffile", "imagecodecs", "scikit-image",
    "scikit-learn", "cp-measure", "copairs", "pycytominer", "umap-learn", "safetensors",
]


def package_versions(extra: list[str] | None = None) -> dict[str, str]:
    """Installed versions of the packages that shape the results."""
    out = {}
    for name in _PACKAGES + (extra or []):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = platform.python_version()
    return out


def device_info(device: str | None = None) -> dict[str, Any]:
    """CPU model, core count, memory and (if used) the CUDA device."""
    import psutil

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "device": device or "cpu",
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if device and device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


class ResourceMonitor:
    """Sample this process tree's CPU % and system memory % in a background thread.

    Use as a context manager; ``summary()`` gives wall time and average / max of each figure.
    ``cpu_pct_*`` is this process tree's CPU time as a share of the machine (100 = all cores busy by this run), as
    the thesis's Appendix C reports it; ``machine_cpu_pct_*`` is the whole machine's (other users included), so a
    shared machine's load does not pass for the run's. A run shorter than one sampling interval has no samples: NaN,
    never a made-up figure.
    """

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.cpu: list[float] = []
        self.machine_cpu: list[float] = []
        self.mem: list[float] = []
        self.rss_gb: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = 0.0
        self.t1 = 0.0

    def _tree_rss(self, proc) -> float:
        total = 0
        for p in [proc] + proc.children(recursive=True):
            try:
                total += p.memory_info().rss
            except Exception:
                pass
        return total / 2**30

    @staticmethod
    def _tree_cpu_s(proc) -> float:
        """CPU seconds of this process, its waited-for children and its live descendants."""
        t = proc.cpu_times()
        total = t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
        for p in proc.children(recursive=True):
            try:
                c = p.cpu_times()
                total += c.user + c.system
            except Exception:  # exited between the listing and the read
                pass
        return total

    def _run(self) -> None:
        import psutil

        proc = psutil.Process()
        psutil.cpu_percent(None)
        ncpu = psutil.cpu_count() or 1
        last_t, last_cpu = time.perf_counter(), self._tree_cpu_s(proc)
        while not self._stop.wait(self.interval):
            now, cpu_s = time.perf_counter(), self._tree_cpu_s(proc)
            # a child that exits unwaited takes its CPU time with it: clip at 0, never a negative share
            self.cpu.append(max(0.0, 100.0 * (cpu_s - last_cpu) / max(1e-9, now - last_t) / ncpu))
            last_t, last_cpu = now, cpu_s
            self.machine_cpu.append(psutil.cpu_percent(None))
            self.mem.append(psutil.virtual_memory().percent)
            self.rss_gb.append(self._tree_rss(proc))

    def __enter__(self) -> "ResourceMonitor":
        import psutil  # noqa: F401  imported here, not in the thread: a fork during an import can deadlock workers

        self.t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.t1 = time.perf_counter()

    def summary(self) -> dict[str, float]:
        """Wall seconds and average / max CPU %, memory % and process-tree RSS (GB)."""
        wall = (self.t1 or time.perf_counter()) - self.t0

        def stats(xs: list[float]) -> tuple[float, float]:
            return (float(np.mean(xs)), float(np.max(xs))) if xs else (float("nan"), float("nan"))

        cpu_avg, cpu_max = stats(self.cpu)
        mcpu_avg, mcpu_max = stats(self.machine_cpu)
        mem_avg, mem_max = stats(self.mem)
        rss_avg, rss_max = stats(self.rss_gb)
        return {
            "wall_s": wall, "cpu_pct_avg": cpu_avg, "cpu_pct_max": cpu_max,
            "machine_cpu_pct_avg": mcpu_avg, "machine_cpu_pct_max": mcpu_max,
            "mem_pct_avg": mem_avg, "mem_pct_max": mem_max, "rss_gb_avg": rss_avg, "rss_gb_max": rss_max,
        }


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically (numpy scalars and paths converted)."""

    def default(o: Any) -> Any:
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=default, allow_nan=True))
    tmp.replace(p)
    return p


def file_digest(path: str | Path | None) -> str | None:
    """``sha256:<hex>`` of a file's bytes (None for None): what a signature records instead of its path."""
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()
