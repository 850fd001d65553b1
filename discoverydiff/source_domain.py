"""The source domain of the demo-sized base models: images the model is trained on or fitted to.

Closed-form models (:mod:`discoverydiff.models`), training (:mod:`discoverydiff.training`) and the
source-domain check (:mod:`discoverydiff.source_check`) all draw their source images here, so that
none of them imports another for its data.

- :func:`natural_image_patches`: seeded crops of the colour photographs bundled with scikit-image
  (offline; no galaxies among them);
- :func:`source_images`: the images config ``model.source_images`` names (those patches, or an
  ingested tensor file).
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import ConfigError, InputError

#: Colour photographs shipped inside the scikit-image wheel (no pooch download needed).
#: ``hubble_deep_field`` is left out on purpose: the source domain must not contain galaxies.
#: ``stereo_motorcycle`` returns (left, right, disparity); its left view is used.
SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
)


@functools.cache
def _skimage_photo(name: str) -> np.ndarray:
    """One bundled photograph as a read-only (H, W, 3) uint8 array."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    image.setflags(write=False)
    return image


def natural_image_patches(n: int, size: int, seed: int, scale_range=(0.25, 1.0)) -> np.ndarray:
    """Random square crops of natural colour photographs, the demo's source domain.

    Each patch picks one of :data:`SKIMAGE_PHOTOS` uniformly, a square side uniform in
    ``scale_range * min(H, W)`` pixels, a uniform position and a horizontal flip with
    probability 1/2, and is resized to ``size x size`` with Pillow's Lanczos filter
    (which widens its kernel when downsampling, i.e. anti-aliases). Only files bundled
    with scikit-image are read: no network access.

    Parameters
    ----------
    n : int
        Number of patches.
    size : int
        Side of the output patches, pixels.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same patches.
    scale_range : (float, float)
        Smallest and largest crop side as a fraction of the photo's shorter side, in (0, 1].

    Returns
    -------
    numpy.ndarray
        (n, 3, size, size) float32 in [-1, 1] (``2 * uint8 / 255 - 1``).
    """
    from PIL import Image

    lo, hi = (float(s) for s in scale_range)
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"scale_range must satisfy 0 < lo <= hi <= 1, got {scale_range!r}")
    if n < 0 or size < 1:
        raise ValueError(f"need n >= 0 and size >= 1, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, size, size), dtype=np.float32)
    for i in range(n):
        photo = _skimage_photo(SKIMAGE_PHOTOS[rng.integers(len(SKIMAGE_PHOTOS))])
        height, width = photo.shape[:2]
        side = max(1, int(round(rng.uniform(lo, hi) * min(height, width))))
        top = int(rng.integers(height - side + 1))
        left = int(rng.integers(width - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        patch = np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        out[i] = patch.transpose(2, 0, 1) / 127.5 - 1.0
    return out


def source_images(cfg: dict, resolution: int, channels: int, seed: int) -> tuple[np.ndarray, str]:
    """The source-domain images for closed-form models and training (config ``model.source_images``).

    ``{kind: natural_patches, n: N}`` cuts N patches from scikit-image's bundled photographs;
    ``{kind: tensors, path: results/X/tensors.h5}`` uses an ingested tensor file.
    """
    kind = cfg.get("kind", "natural_patches")
    if kind == "natural_patches":
        n = int(cfg.get("n", 1024))
        images = natural_image_patches(n, resolution, seed)
        if channels == 1:
            images = images.mean(axis=1, keepdims=True)
        return images, f"natural_patches(n={n},seed={seed})"
    if kind == "tensors":
        from .store import read_tensor_file

        ts = read_tensor_file(cfg["path"])
        if ts.x.shape[1:] != (channels, resolution, resolution):
            raise InputError(cfg["path"], f"holds {ts.x.shape[1:]} images; the model takes "
                                          f"({channels}, {resolution}, {resolution})")
        return ts.x, f"tensors({cfg['path']})"
    raise ConfigError(f"model.source_images.kind must be natural_patches or tensors, got {kind!r}")
