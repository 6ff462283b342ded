"""Write StratoNet data in formats the ecosystem reads: OME-Zarr HCS plates (images) and AnnData ``.h5ad``
(profiles and single-cell tables)."""
