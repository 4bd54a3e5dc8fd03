"""Latent walks of a GAN, and how the generated objects move along them.

The paper's picture of its GANs: along a walk in latent space, the CoordConv GAN's objects *move*
across the canvas, while the plain GAN's *fade out* in one place and *in* at another. Two numbers
per walk turn that picture into measurements (:func:`walk_motion`):

* ``jump_ratio``: the largest jump of the object's centre between consecutive steps, over the total
  path length of the centre. Even travel over ``steps`` points gives ``1 / (steps - 1)``; an object
  that teleports in one step gives 1.0. For scale: independent real Sort-of-Clevr images taken as
  walks of 10 steps (every step a new random position) give about 0.19 (mean over 200 objects).
* ``mass_dip``: the object's least foreground mass along the walk, over the mean of its masses at
  the two ends. 1.0: no dip (it never shrinks or fades below its ends); near 0: it faded out and back in.
  A Sort-of-Clevr object that changes shape also changes mass (circle 317 px, square 441 px at
  r = 10), and occlusion hides part of it: those independent real images give about 0.84.

The walks themselves (:func:`walk_latents`) follow the original's ``util.interpolate``: each point
is rescaled to the linearly interpolated norm of the two ends (``path="norm"``). A straight line
(``path="linear"``) passes through latents of smaller norm: for ``z`` uniform in ``[-1, 1]^d`` and
large ``d``, about ``0.71 = sqrt(1/2)`` of the ends' norm mid-path, which shrinks or fades objects in
any GAN and so blurs the very difference the measure looks for.

**What the object is, per step and per colour of the scene** (:class:`~coordconv_data.geometry.SceneSpec`;
one colour for Not-so-Clevr, each palette colour for Sort-of-Clevr, pooled in the averages):

1. *Foreground weight* of a pixel for colour ``k``: the pixel must not be labelled background by the
   geometry score's rule (farther than ``tolerance`` times the smallest gap between the scene's
   colours from the background) and ``k`` must be its nearest object colour; its weight is then its
   projection on the line from the background to colour ``k``, clipped to ``[0, 1]`` (1 for a pixel
   of the full colour, 0.5 for a half-faded one).
2. *The object*: the heaviest 8-connected component of the pixels with weight for ``k``. Its *mass*
   is its summed weight (in pixels of full colour: 81 for a real 9x9 square). A component lighter
   than the geometry score's least object area (a quarter of the scene's reference area) is no
   object: the step counts as *absent*, its centre is undefined (NaN) and its mass still counts.
   Taking the heaviest component (not all of the colour's pixels) matters for a cross-fade: two
   half-faded squares would put an all-pixel centroid half-way between them and hide the jump.
3. *Its centre*: the fitted template centre when the geometry score finds exactly one well-formed
   object of that colour and it lies in the component (exact for clean shapes, and unmoved by a
   later object covering part of this one), otherwise the weighted centroid of the component.

**Per walk and colour**: the centre's path runs through the steps where the object is present, so
an object that disappears and reappears elsewhere makes one jump across the gap. ``jump_ratio`` is
NaN when the object is present at fewer than two steps (*untracked*) or when its centre travels less
than ``min_travel`` pixels in all (*still*: a walk whose object never moves says nothing about
smoothness, and sub-pixel jitter would give meaningless ratios). ``mass_dip`` is NaN unless the object
is present at both ends. Averages are over the walks where a value is defined, with the counts.

No torch here except inside :func:`walk_latents`: the measure takes the ``uint8`` images the
geometry score takes (:func:`~coordconv_data.geometry.to_uint8` converts a generator's output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .errors import InvalidParameter
from .geometry import DEFAULT_RULES, Rules, SceneSpec, find_objects, check_images, area_limits

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["PATHS", "WalkMotion", "walk_latents", "walk_motion"]

PATHS = ("norm", "linear")
MIN_TRAVEL = 1.0  # px: a centre that travels less in a whole walk is "still"
CHUNK = 256  # images analysed together (bounds memory: about 16 MiB per colour at 64x64)


# -- latent walks -------------------------------------------------------------------------------------

def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise InvalidParameter("steps", f"steps must be an integer of at least 2 (both ends), got {steps!r}")
    return int(steps)


def walk_latents(ends: "Tensor", steps: int, path: str = "norm") -> "Tensor":
    """Latent walks between pairs of latents, ``steps`` points each, ends included.

    Point ``s`` of walk ``r`` is ``z = (1 - t) a + t b`` with ``t = s / (steps - 1)``, ``a, b =
    ends[r]``; with ``path="norm"`` (the original's ``util.interpolate``) it is then rescaled to
    the norm ``(1 - t) |a| + t |b|``, so every point has the norm of the ends' interpolated norms.
    A point where ``z`` is exactly 0 (opposite ends of equal norm, mid-path) stays 0. The ends are
    returned exactly as given.

    Args:
        ends: ``(rows, 2, z_dim)`` floating tensor: start and end latent of each walk.
        steps: points per walk, at least 2.
        path: ``"norm"`` (norm-corrected, the default) or ``"linear"`` (straight lines).

    Returns:
        ``(rows * steps, z_dim)``: walk-major (walk ``r``'s step ``s`` is row ``r * steps + s``),
        on the device and dtype of ``ends``.
    """
    import torch

    steps = _check_steps(steps)
    if path not in PATHS:
        raise InvalidParameter("path", f"path must be one of {', '.join(PATHS)}, got {path!r}")
    if not isinstance(ends, torch.Tensor) or ends.dim() != 3 or ends.shape[1] != 2 or not ends.is_floating_point():
        shape = tuple(ends.shape) if isinstance(ends, torch.Tensor) else type(ends).__name__
        raise ValueError(f"ends must be a floating (rows, 2, z_dim) tensor, got {shape}")
    rows, _, z_dim = ends.shape
    t = torch.linspace(0, 1, steps, dtype=ends.dtype, device=ends.device).view(1, steps, 1)
    a, b = ends[:, :1], ends[:, 1:]
    z = (1 - t) * a + t * b
    if path == "norm":
        radius = (1 - t) * a.norm(dim=-1, keepdim=True) + t * b.norm(dim=-1, keepdim=True)
        norm = z.norm(dim=-1, keepdim=True)
        z = torch.where(norm > 0, z * (radius / norm.clamp_min(torch.finfo(z.dtype).tiny)), z)
    z[:, 0], z[:, -1] = ends[:, 0], ends[:, 1]
    return z.reshape(rows * steps, z_dim)


# -- the motion measure -------------------------------------------------------------------------------

@dataclass(frozen=True)
class WalkMotion:
    """Per step, per walk, and averaged: how each colour's object moves along the walks.

    ``rows`` walks of ``steps`` steps, ``K = len(names)`` colours.

    Attributes:
        steps: steps per walk.
        names: the scene's colour names.
        centers: ``(rows, steps, K, 2)`` float64 ``(x, y)`` centre of the object; NaN where absent.
        mass: ``(rows, steps, K)`` float64 foreground mass of the object (heaviest component), in
            pixels of full colour; 0 where there is none.
        fitted: ``(rows, steps, K)`` bool, whether the centre is the geometry score's template fit
            (else the weighted centroid; False where absent).
        jump_ratio: ``(rows, K)`` largest centre jump / total path; NaN where undefined.
        mass_dip: ``(rows, K)`` least mass / mean of the two ends' masses; NaN where undefined.
        travel: ``(rows, K)`` total path length of the centre, in pixels (0 when not tracked).
    """

    steps: int
    names: tuple[str, ...]
    centers: np.ndarray
    mass: np.ndarray
    fitted: np.ndarray
    jump_ratio: np.ndarray
    mass_dip: np.ndarray
    travel: np.ndarray

    @property
    def even_jump_ratio(self) -> float:
        """``1 / (steps - 1)``: the jump ratio of perfectly even travel through every step."""
        return 1.0 / (self.steps - 1)

    def as_dict(self) -> dict[str, float]:
        """The averages over all walks and colours (pooled), with how many values each is over.

        Keys: ``walks`` (rows), ``objects`` (rows x colours), ``steps``, ``even_jump_ratio``,
        ``jump_ratio`` / ``jump_ratio_median`` over the ``moving`` objects, ``still`` and
        ``untracked`` counts, ``mass_dip`` / ``mass_dip_median`` over ``dip_measured`` objects. A
        mean over no values is NaN.
        """
        present = np.isfinite(self.centers[..., 0]).sum(axis=1)  # (rows, K)
        jumps, dips = self.jump_ratio[np.isfinite(self.jump_ratio)], self.mass_dip[np.isfinite(self.mass_dip)]

        def stat(values: np.ndarray, fn: Any) -> float:
            return float(fn(values)) if len(values) else math.nan

        return {
            "walks": int(self.jump_ratio.shape[0]),
            "objects": int(self.jump_ratio.size),
            "steps": int(self.steps),
            "even_jump_ratio": self.even_jump_ratio,
            "jump_ratio": stat(jumps, np.mean),
            "jump_ratio_median": stat(jumps, np.median),
            "moving": int(len(jumps)),
            "still": int(((present >= 2) & ~np.isfinite(self.jump_ratio)).sum()),
            "untracked": int((present < 2).sum()),
            "mass_dip": stat(dips, np.mean),
            "mass_dip_median": stat(dips, np.median),
            "dip_measured": int(len(dips)),
        }


def _weights(images: np.ndarray, scene: SceneSpec, rules: Rules) -> np.ndarray:
    """``(K, N, H, W)`` float32 foreground weight of every pixel for every colour (rule 1)."""
    x = images.astype(np.float32)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    bg = np.array(scene.background, np.float32)
    cols = np.array(scene.colors, np.float32)  # (K, 3)
    every = np.vstack([bg, cols]).astype(np.float64)
    gaps = np.sqrt(((every[:, None] - every[None]) ** 2).sum(-1))
    reach2 = float((rules.tolerance * gaps[~np.eye(len(every), dtype=bool)].min()) ** 2)
    d = x - bg  # (N, H, W, 3)
    not_bg = (d * d).sum(-1) >= reach2
    dirs = cols - bg  # (K, 3)
    dist2 = ((x[..., None, :] - cols) ** 2).sum(-1)  # (N, H, W, K)
    nearest = dist2.argmin(-1)
    proj = np.clip((d @ dirs.T) / (dirs * dirs).sum(-1), 0.0, 1.0)  # (N, H, W, K)
    out = np.zeros((len(cols),) + x.shape[:3], np.float32)
    for k in range(len(cols)):
        out[k] = np.where(not_bg & (nearest == k), proj[..., k], 0.0)
    return out


def _objects(images: np.ndarray, scene: SceneSpec, rules: Rules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image and colour: centre ``(N, K, 2)`` (NaN: absent), mass ``(N, K)``, fitted ``(N, K)``."""
    n, h, w, _ = images.shape
    k_total = len(scene.colors)
    min_area, _ = area_limits(scene, rules)
    weights = _weights(images, scene, rules)
    found = find_objects(images, scene, rules)  # the geometry score's objects, for fitted centres
    centers = np.full((n, k_total, 2), np.nan)
    mass = np.zeros((n, k_total))
    fitted = np.zeros((n, k_total), bool)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    for k in range(k_total):
        wk = np.zeros((n, h + 1, w), np.float32)  # one empty row between images: components stay apart
        wk[:, :h] = weights[k]
        tall = wk.reshape(n * (h + 1), w)
        count, labels = cv2.connectedComponents((tall > 0).astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        if count <= 1:
            continue
        lab = labels.reshape(n, h + 1, w)[:, :h].ravel()
        wv = weights[k].ravel().astype(np.float64)
        comp_mass = np.bincount(lab, weights=wv, minlength=count)
        comp_x = np.bincount(lab, weights=wv * np.broadcast_to(xs, (n, h, w)).ravel(), minlength=count)
        comp_y = np.bincount(lab, weights=wv * np.broadcast_to(ys, (n, h, w)).ravel(), minlength=count)
        comp_img = np.zeros(count, np.int64)
        comp_img[lab] = np.repeat(np.arange(n), h * w)
        ids = np.arange(1, count)
        # Heaviest component per image: sort by (image, -mass), keep each image's first.
        order = ids[np.lexsort((-comp_mass[ids], comp_img[ids]))]
        first = np.r_[True, comp_img[order][1:] != comp_img[order][:-1]]
        main = order[first]
        imgs = comp_img[main]
        mass[imgs, k] = comp_mass[main]
        ok = comp_mass[main] >= min_area
        centers[imgs[ok], k, 0] = comp_x[main[ok]] / comp_mass[main[ok]]
        centers[imgs[ok], k, 1] = comp_y[main[ok]] / comp_mass[main[ok]]
        # The template fit, where exactly one well-formed object of this colour lies in the main component.
        main_of = np.zeros(n, np.int64)
        main_of[imgs] = main
        sel = (found.color == k) & (found.shape >= 0) & (found.counts[found.image, k] == 1)
        fi, fc = found.image[sel], found.center[sel]
        cx, cy = fc[:, 0].astype(np.int64), fc[:, 1].astype(np.int64)
        inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        fi, fc, cx, cy = fi[inside], fc[inside], cx[inside], cy[inside]
        hit = labels.reshape(n, h + 1, w)[fi, cy, cx] == main_of[fi]
        hit &= mass[fi, k] >= min_area
        centers[fi[hit], k] = fc[hit]
        fitted[fi[hit], k] = True
    return centers, mass, fitted


def walk_motion(images: np.ndarray, steps: int, scene: SceneSpec, *, rules: Rules = DEFAULT_RULES,
                min_travel: float = MIN_TRAVEL) -> WalkMotion:
    """Measure how each colour's object moves along latent walks (rules in the module docstring).

    Args:
        images: ``(rows * steps, H, W, 3)`` uint8 RGB or ``(rows * steps, H, W, 1)`` grey, walk-major
            (walk ``r``'s step ``s`` at index ``r * steps + s``, as :func:`walk_latents` orders the
            latents), ``H == W == scene.size``.
        steps: steps per walk, at least 2.
        scene: what the images should show (its colours, object size and background).
        rules: the geometry score's thresholds (tolerance, least object area).
        min_travel: total centre travel in pixels below which an object counts as *still*.

    Returns:
        A :class:`WalkMotion` (per step, per walk, and ``as_dict()`` averages).
    """
    steps = _check_steps(steps)
    images = check_images(images, scene, 4, "images")
    if len(images) % steps:
        raise ValueError(f"images must hold whole walks: {len(images)} images is not a multiple of steps={steps}")
    if not (isinstance(min_travel, (int, float)) and math.isfinite(min_travel) and min_travel >= 0):
        raise ValueError(f"min_travel must be a finite number of pixels >= 0, got {min_travel!r}")
    parts = [_objects(images[i : i + CHUNK], scene, rules) for i in range(0, len(images), CHUNK)]
    centers, mass, fitted = (np.concatenate(p) for p in zip(*parts))
    rows, k_total = len(images) // steps, len(scene.colors)
    centers = centers.reshape(rows, steps, k_total, 2)
    mass = mass.reshape(rows, steps, k_total)
    fitted = fitted.reshape(rows, steps, k_total)

    jump = np.full((rows, k_total), np.nan)
    travel = np.zeros((rows, k_total))
    for r in range(rows):
        for k in range(k_total):
            c = centers[r, :, k]
            c = c[np.isfinite(c[:, 0])]
            if len(c) < 2:
                continue
            hops = np.sqrt(((c[1:] - c[:-1]) ** 2).sum(-1))
            travel[r, k] = hops.sum()
            if travel[r, k] >= min_travel and travel[r, k] > 0:
                jump[r, k] = hops.max() / travel[r, k]
    present = np.isfinite(centers[..., 0])
    ends = (mass[:, 0] + mass[:, -1]) / 2
    both = present[:, 0] & present[:, -1]
    dip = np.full((rows, k_total), np.nan)
    dip[both] = mass.min(axis=1)[both] / ends[both]
    return WalkMotion(steps=steps, names=scene.names, centers=centers, mass=mass, fitted=fitted, jump_ratio=jump,
                      mass_dip=dip, travel=travel)
