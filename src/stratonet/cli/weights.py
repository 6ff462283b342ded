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
@click.option("--input-size", type=int, default=224, show_default=True, help="Input size the weights expect.")
@click.option("--training-data", default="unknown", show_default=True, help="What the weights were trained on.")
@click.option("--epochs", type=int, default=None, help="Training epochs, if known.")
@click.option("--name", default=None, help="Checkpoint name used in provenance (default: the output name).")
def import_(src: Path, out: Path, model: str | None, in_chans: str | None, input_size: int, training_data: str,
            epochs: int | None, name: str | None) -> None:
    """Convert a torchvision ResNet / timm ECA-ResNet state dict (SRC .pth/.pt/.safetensors) into a checkpoint."""
    from stratonet.models import save_checkpoint
    from stratonet.models.convert import import_state_dict, read_state_dict
    from stratonet.progress import console

    sd = read_state_dict(src)
    net, info = import_state_dict(sd, model_name=model, in_chans=int(in_chans) if in_chans else None, source=str(src))
    card_path = save_checkpoint(net, out, {
        "name": name or Path(out).name.removesuffix(".safetensors"), "training_data": training_data,
        "epochs": epochs, "input_size": input_size, "imported_from": str(src), "source_layout": info["layout"],
        "dropped_keys": len(info["dropped"]),
    })
    card = json.loads(card_path.read_text())
    dropped = f", dropped {len(info['dropped'])} key(s) after the last tap" if info["dropped"] else ""
    console.print(f"{src} ({info['layout']['family']}{info['layout']['depth']}) -> {net.model_name}{dropped}; "
                  f"sha256 {card['sha256'][:12]}; card {card_path}")


@weights.command("show")
@click.argument("checkpoint", type=click.Path(path_type=Path))
def show(checkpoint: Path) -> None:
    """Print a checkpoint's model card."""
    from stratonet.models.checkpoint import read_card

    card = read_card(checkpoint)
    card.pop("feature_info", None)
    click.echo(json.dumps(card, indent=2))
