"""`stratonet weights`: import and inspect checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("weights")
def weights() -> None:
    """Import and inspect model weights (safetensors + JSON model card)."""


@weights.command("import")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Checkpoint to write (<out>.safetensors + <out>.json).")
@click.option("--model", default=None,
              help="Target model, e.g. stratonet50 (default: resnet<N> or ecaresnet<N>, detected from the keys).")
@click.option("--in-chans", type=click.Choice(["1", "3"]), default=None,
              help="Stem channels of the target (1 sums the RGB stem; default: as in the source).")
@click.option("--input-size", type=int, default=None,
              help="Input size the weights expect (default: the model's, 224 for ResNets).")
@click.option("--training-data", default="unknown", show_default=True, help="What the weights were trained on.")
@click.option("--epochs", type=int, default=None, help="Training epochs, if known.")
@click.option("--name", default=None, help="Checkpoint name used in provenance (default: the output name).")
def import_(src: Path, out: Path, model: str | None, in_chans: str | None, input_size: int | None,
            training_data: str, epochs: int | None, name: str | None) -> None:
    """Convert a torchvision ResNet / timm ECA-ResNet / EfficientNet-Lite state dict (SRC .pth/.pt/.safetensors)
    into a checkpoint."""
    from stratonet.models.convert import convert_checkpoint
    from stratonet.core.progress import console

    card_path, info = convert_checkpoint(src, out, model_name=model, in_chans=int(in_chans) if in_chans else None,
                                         name=name, training_data=training_data, epochs=epochs,
                                         input_size=input_size)
    card = json.loads(card_path.read_text())
    layout = info["layout"]
    source = layout.get("variant") or f"{layout['family']}{layout['depth']}{'d' if layout.get('deep_stem') else ''}"
    dropped = f", dropped {len(info['dropped'])} key(s) after the last tap" if info["dropped"] else ""
    console.print(f"{src} ({source}, sha256 {card['source_sha256'][:12]}) -> {card['model']}{dropped}; "
                  f"weights sha256 {card['sha256'][:12]}; card {card_path}")


@weights.command("show")
@click.argument("checkpoint", type=click.Path(path_type=Path))
def show(checkpoint: Path) -> None:
    """Print a checkpoint's model card (CHECKPOINT: a path, or a cached or installed weights name)."""
    from stratonet.models.checkpoint import read_card
    from stratonet.models.pretrained import resolve_weights

    card = read_card(resolve_weights(checkpoint))
    card.pop("feature_info", None)
    click.echo(json.dumps(card, indent=2))


_CACHE_HELP = "Weights cache (default: $STRATONET_CACHE or ~/.cache/stratonet)."


@weights.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help=_CACHE_HELP)
@click.option("--base-url", default=None,
              help="Mirror serving the same file names (default: $STRATONET_WEIGHTS_BASE_URL, else the registered URL).")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the connection and for each piece of data.")
@click.option("--force", is_flag=True, default=False, help="Download again even when cached.")
def fetch(names: tuple[str, ...], cache_dir: Path | None, base_url: str | None, timeout: float, force: bool) -> None:
    """Download registered ImageNet weights (e.g. resnet50.tv_in1k), verify their sha256 and convert them.

    The StratoNet checkpoint lands in <cache>/checkpoints/<NAME>; 'extract deep --weights NAME' then finds it.
    """
    from stratonet.models.pretrained import fetch_weights, get_entry
    from stratonet.core.progress import console

    for name in names:
        get_entry(name)  # unknown names fail before any download
    for name in names:
        card_path = fetch_weights(name, cache=cache_dir, base_url=base_url, timeout=timeout, force=force)
        card = json.loads(card_path.read_text())
        console.print(f"{name}: {card['model']} from {card['source']} (sha256 {card['source_sha256'][:12]} "
                      f"verified) -> {card_path}")


@weights.command("list")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help=_CACHE_HELP)
@click.option("--json", "as_json", is_flag=True, default=False, help="Print JSON instead of a table.")
def list_(cache_dir: Path | None, as_json: bool) -> None:
    """Show registered weights, which are installed (offline) and which are in the cache."""
    from stratonet.models.pretrained import cache_dir as resolve_cache
    from stratonet.models.pretrained import list_weights

    rows = list_weights(cache_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"cache: {resolve_cache(cache_dir)}")
    click.echo(f"{'name':<26} {'model':<20} {'installed':<9} {'cached':<6} {'sha256':<12}  description")
    for r in rows:
        click.echo(f"{r['name']:<26} {str(r['model']):<20} {'yes' if r['installed'] else '-':<9} "
                   f"{'yes' if r['cached'] else '-':<6} {(r['sha256'] or '')[:12]:<12}  {r['description']}")
