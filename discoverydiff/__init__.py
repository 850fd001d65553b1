"""discoverydiff: discover new image domains inside a frozen, pre-trained diffusion model.

The library behind the Snakemake workflow: ingest of physical fields and galaxy cutouts,
DDIM inversion, latent discovery, decoding, and the statistics astronomers trust. Every
stage is importable and usable without Snakemake.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("discoverydiff")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
