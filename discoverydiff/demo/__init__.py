"""Synthetic stand-ins for the two target domains, so the workflow runs end to end offline.

* :mod:`discoverydiff.demo.radiation`: radiation-field maps of synthetic molecular clouds
  (FITS and HDF5, G0 in Habing units).
* :mod:`discoverydiff.demo.galaxies`: Galaxy Zoo 2-like gri cutouts and catalogue.

Every map and image ``i`` is a pure function of ``(seed, i)``, so the same seed gives
bitwise-equal files (see :mod:`discoverydiff.demo._common`).
"""

from .galaxies import galaxy_cutout, sersic_bn, sersic_image, write_galaxy_demo
from .radiation import (
    BOHLIN_NH_PER_AV_CM2 as BOHLIN_NH_PER_AV_CM2,
)
from .radiation import (
    DEMO_DISTANCE_PC as DEMO_DISTANCE_PC,
)
from .radiation import (
    DEMO_PIXEL_PC as DEMO_PIXEL_PC,
)
from .radiation import (
    FUV_TAU_PER_AV as FUV_TAU_PER_AV,
)
from .radiation import (
    HABING_ERG_S_CM2,
    gaussian_random_field,
    molecular_cloud_column,
    radiation_field_map,
    write_radiation_demo,
)
from .radiation import (
    ORION_DEC_DEG as ORION_DEC_DEG,
)
from .radiation import (
    ORION_RA_DEG as ORION_RA_DEG,
)

# The same list as the single-module discoverydiff.demo had; the constants above are
# importable by name but, as before, not part of ``import *``.
__all__ = [
    "HABING_ERG_S_CM2",
    "gaussian_random_field",
    "molecular_cloud_column",
    "radiation_field_map",
    "write_radiation_demo",
    "sersic_bn",
    "sersic_image",
    "galaxy_cutout",
    "write_galaxy_demo",
]
