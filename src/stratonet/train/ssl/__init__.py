"""Self-supervised training (DINO, Caron et al. 2021) of the registered backbones on a screen's own images.

dino.py    projection head, centring + sharpening loss, teacher EMA and the cosine schedules
views.py   multi-crop views suited to microscopy (one stain per view)
pool.py    the training images: index rows -> per-channel [0, 1] planes and nucleus centres
trainer.py the loop: seed, time budget, bf16/AMP, progress, checkpoints, resume, model card
"""
