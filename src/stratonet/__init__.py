"""StratoNet: image-based profiling of high-content screens.

index -> preprocess -> extract (deep, classical, pixel) -> profile -> evaluate -> report, plus training.
"""

__version__ = "0.1.0"
