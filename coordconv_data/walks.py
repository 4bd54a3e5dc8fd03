"""Latent walks of a GAN, and how the generated objects move along them.

The paper's picture of its GANs: along a walk in latent space, the CoordConv GAN's objects *slide*
across the canvas, while the plain GAN's *fade out* in one place and *in* at another.
:func:`walk_motion` turns that picture into a label per object and walk, from the object's centre
and mass at every step:

* ``slide``: present at every step with a steady mass, and its centre's path is nearly straight
  (end-to-end distance over path length at least :data:`STRAIGHT`) with even steps (no step longer
  than :data:`EVEN` times ``1 / (steps - 1)`` of the path, or half of it);
* ``still``: present throughout, steady, and its centre travels under ``min_travel`` pixels in all;
* ``jitter``: present throughout and steady, but it wanders without getting anywhere, by steps no
  longer than the object's radius (it always overlaps its last place);
* ``teleport``: present throughout and steady, but its path is crooked or jumps: a step longer than
  its radius that the path does not earn (a new place every step, or one jump);
* ``fade``: its mass dips below :data:`FADE` of the mean of its two ends' masses, or it is absent
  at some step (it faded out and in, cross-faded into a copy elsewhere, vanished or appeared): an
  object that vanishes counts as faded, never as still;
* ``absent``: no object of that colour at any step.

So a square moved from A to B in even steps is a slide; the same square at a new random place at
every step is a teleport (its path is long and crooked), however evenly its jumps average out; two
squares cross-fading count as a fade, because the heaviest one's mass halves where they cross.

**What the object is, per step and per colour of the scene** (:class:`~coordconv_data.geometry.SceneSpec`;
one colour for Not-so-Clevr, each palette colour for Sort-of-Clevr, pooled in the counts):

1. *Foreground weight* of a pixel for colour ``k``: the pixel must not be labelled background by the
   geometry score's rule (farther than ``tolerance`` times the smallest gap between the scene's
   colours from the background) and ``k`` must be its nearest object colour; its weight is then its
   projection on the line from the background to colour ``k``, clipped to ``[0, 1]`` (1 for a pixel
   of the full colour, 0.5 for a half-faded one).
2. *The object*: the heaviest 8-connected component of the pixels with weight for ``k``. Its *mass*
   is its summed weight (in pixels of full colour: 81 for a real 9x9 square). A component lighter
   than the geometry score's least object area (a quarter of the scene's reference area) is no
   object: the step counts as *absent*. Taking the heaviest component (not all of the colour's pixels)
   matters for a cross-fade: two half-faded squares would put an all-pixel centroid half-way between
   them and keep the mass whole, hiding both the jump and the fade.
3. *Its centre*: the fitted template centre when the geometry score finds exactly one well-formed
   object of that colour and it lies in the component (exact for clean shapes, and unmoved by a
   later object covering part of this one), otherwise the weighted centroid of the component.

The walks themselves (:func:`walk_latents`) follow the original's ``util.interpolate``: each point
is rescaled to the linearly interpolated norm of the two ends (``path="norm"``). A straight line
(``path="linear"``) passes through latents of smaller norm: for ``z`` uniform in ``[-1, 1]^d`` and
large ``d``, about ``0.71 = sqrt(1/2)`` of the ends' norm mid-path, which shrinks or fades objects in
any GAN and so blurs the very difference the measure looks for.

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

__all__ = ["PATHS", "LABELS", "WalkMotion", "walk_latents", "walk_motion"]

PATHS = ("norm", "linear")
LABELS = ("slide", "still", "jitter", "teleport", "fade", "absent")
MIN_TRAVEL = 1.0  # px: a centre that travels less in a whole walk is still
STRAIGHT = 0.8  # least end-to-end distance over path length of a slide
EVEN = 3.0  # a slide's longest step is at most EVEN / (steps - 1) of its path (and at most half of it)
FADE = 0.6  # least mass over the ends' mean mass of an object that does not fade
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
    """Per step and per walk: where each colour's object is, and how it moves (its label).

    ``rows`` walks of ``steps`` steps, ``K = len(names)`` colours.

    Attributes:
        steps: steps per walk.
        names: the scene's colour names.
        radius: the scene's object radius in pixels (a jitter's steps are no longer).
        centers: ``(rows, steps, K, 2)`` float64 ``(x, y)`` centre of the object; NaN where absent.
        mass: ``(rows, steps, K)`` float64 foreground mass of the object (heaviest component), in
            pixels of full colour; 0 where there is none.
        fitted: ``(rows, steps, K)`` bool, whether the centre is the geometry score's template fit
            (else the weighted centroid; False where absent).
        labels: ``(rows, K)`` one of :data:`LABELS` per object and walk (the module docstring).
        straightness: ``(rows, K)`` end-to-end distance over path length of the centre; NaN unless the
            object is present throughout and travels.
        longest_step: ``(rows, K)`` the longest step over the path length (``1 / (steps - 1)`` for
            even travel, 1 for one jump); NaN where straightness is.
        mass_dip: ``(rows, K)`` least mass over the mean of the two ends' masses (0 when absent at a
            step or at an end); NaN for an absent object.
        travel: ``(rows, K)`` path length of the centre in pixels over the steps it is present.
    """

    steps: int
    names: tuple[str, ...]
    radius: float
    centers: np.ndarray
    mass: np.ndarray
    fitted: np.ndarray
    labels: np.ndarray
    straightness: np.ndarray
    longest_step: np.ndarray
    mass_dip: np.ndarray
    travel: np.ndarray

    @property
    def even_step(self) -> float:
        """``1 / (steps - 1)``: the longest step of perfectly even travel, over the path."""
        return 1.0 / (self.steps - 1)

    def counts(self) -> dict[str, int]:
        """How many objects (walks x colours) carry each label."""
        return {label: int((self.labels == label).sum()) for label in LABELS}

    def as_dict(self) -> dict[str, float]:
        """The counts of each label and the pooled means, with what they are over.

        Keys: ``walks``, ``objects`` (walks x colours), ``steps``, one count per label, ``slide_fraction``
        (slides over the objects present at some step), ``moving`` (slides, jitters and teleports),
        ``straightness`` and ``longest_step`` (means over the moving objects), ``mass_dip`` (mean
        over the objects present at some step). A mean over no values is NaN.
        """
        counts = self.counts()
        present = self.labels != "absent"
        moving = np.isin(self.labels, ("slide", "jitter", "teleport"))

        def mean(values: np.ndarray) -> float:
            values = values[np.isfinite(values)]
            return float(values.mean()) if len(values) else math.nan

        return {
            "walks": int(self.labels.shape[0]),
            "objects": int(self.labels.size),
            "steps": int(self.steps),
            **counts,
            "slide_fraction": counts["slide"] / int(present.sum()) if present.any() else math.nan,
            "moving": int(moving.sum()),
            "straightness": mean(self.straightness[moving]),
            "longest_step": mean(self.longest_step[moving]),
            "mass_dip": mean(self.mass_dip[present]),
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

    labels, straight, longest, dip, travel = _label(centers, mass, float(scene.radius), min_travel)
    return WalkMotion(steps=steps, names=scene.names, radius=float(scene.radius), centers=centers, mass=mass,
                      fitted=fitted, labels=labels, straightness=straight, longest_step=longest, mass_dip=dip,
                      travel=travel)


def _label(centers: np.ndarray, mass: np.ndarray, radius: float, min_travel: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per walk and colour: the label and the numbers it rests on (the rules of the module docstring)."""
    rows, steps, k_total, _ = centers.shape
    labels = np.full((rows, k_total), "absent", dtype=object)
    straight, longest, dip = (np.full((rows, k_total), np.nan) for _ in range(3))
    travel = np.zeros((rows, k_total))
    even_limit = min(0.5, EVEN / (steps - 1))
    for r in range(rows):
        for k in range(k_total):
            present = np.isfinite(centers[r, :, k, 0])
            if not present.any():
                continue
            c = centers[r, present, k]
            hops = np.sqrt(((c[1:] - c[:-1]) ** 2).sum(-1))
            travel[r, k] = hops.sum()
            m = mass[r, :, k]
            ends = (m[0] + m[-1]) / 2 if present[0] and present[-1] else 0.0
            dip[r, k] = m.min() / ends if ends > 0 and present.all() else 0.0
            if dip[r, k] < FADE:
                labels[r, k] = "fade"
                continue
            if travel[r, k] < min_travel:
                labels[r, k] = "still"
                continue
            straight[r, k] = float(np.sqrt(((c[-1] - c[0]) ** 2).sum())) / travel[r, k]
            longest[r, k] = hops.max() / travel[r, k]
            if straight[r, k] >= STRAIGHT and longest[r, k] <= even_limit:
                labels[r, k] = "slide"
            elif hops.max() <= radius:
                labels[r, k] = "jitter"
            else:
                labels[r, k] = "teleport"
    return labels.astype(str), straight, longest, dip, travel
