"""Vectorised Perlin noise equal to ``noise.pnoise2`` (noise 1.2.2), bit for bit.

``noise.pnoise2`` is "improved" Perlin noise in C with every operation in float32. This module
re-implements it with numpy, following the same float32 operations in the same order, so that
``pnoise2(x, y, ...)`` on arrays equals calling ``noise.pnoise2`` per element exactly (the tests check
the maximum absolute difference is 0). It never imports torch.

How the reference computes one value (the facts this port follows):

* Inputs are rounded to float32 (``x``, ``y``, ``persistence``, ``lacunarity``, ``repeatx``,
  ``repeaty``); ``octaves`` and ``base`` are C ints.
* One octave, ``noise2(x, y, rx, ry, base)``: lattice indices ``i = int(floor(fmod(x, rx)))`` and
  ``ii = int(fmod(float(i + 1), rx))`` (likewise ``j``, ``jj`` with ``y``, ``ry``), each reduced to
  ``(k & 255) + base``: ``base`` is an offset added to every lattice index, not a seed. The fractional
  parts are ``x - floor(x)`` of the *unreduced* coordinate; the fade is
  ``((x*x)*x) * ((x*((x*6)-15))+10)``; ``lerp(t, a, b) = a + t*(b - a)``; corner hashes
  ``A = P[i]``, ``AA = P[A + j]``, ``AB = P[A + jj]``, ``B = P[ii]``, ``BA = P[B + j]``,
  ``BB = P[B + jj]``; gradient ``g = gx*xf + gy*yf`` with ``(gx, gy)`` the first two components of
  row ``P[hash] & 15`` of the 16-row 3-D gradient table; result
  ``lerp(fy, lerp(fx, g(AA, x, y), g(BA, x-1, y)), lerp(fx, g(AB, x, y-1), g(BB, x-1, y-1)))``.
* Several octaves: ``freq = amp = 1``, ``max = total = 0``; per octave
  ``total += noise2(x*freq, y*freq, rx*freq, ry*freq, base) * amp``; ``max += amp``;
  ``freq *= lacunarity``; ``amp *= persistence``; the result is ``total / max`` (all float32).
  With ``octaves == 1`` the single ``noise2`` value is returned (the same number).

The permutation table and ``base``: ``P`` is the classic 256-entry permutation stored twice (512
bytes). ``P[A + j]`` reads index up to ``255 + 255 + base``, so for ``base >= 2`` some lattice cells
read past the end of the table (undefined behaviour in C). In the compiled reference the bytes that
follow the table are those of the 4-D gradient table ``GRAD4`` (float32 0/+1/-1 values); the installed
x86-64 build was checked to behave exactly so, and this module reproduces those bytes, which makes it
equal to the reference for every coordinate for ``base`` in 0..127 (the range this module accepts).
A build that lays out its read-only data differently would differ in those cells only. Only ``base``
0 and 1 stay inside the table for every coordinate (at base 127, 21% of lattice cells read
past it); prefer ``base=0`` and take per-field variety from coordinate offsets.

Exactness: bit-identical to the x86-64 reference build (the C code compiled without FMA
contraction); a build that fuses multiply-adds would differ by about one float32 ulp.
"""

from __future__ import annotations

import itertools
import math
from numbers import Integral, Real

import numpy as np

from ..errors import InvalidParameter

__all__ = [
    "BASE_MAX",
    "pnoise2",
    "perlin_fields",
    "minmax_scale_fields",
    "check_fractal",
]

#: Largest ``base`` accepted (the reference is checked equal up to here; see the module docstring).
BASE_MAX = 127

# Ken Perlin's reference permutation of 0..255 (data; the C table stores it twice).
_PERM256 = np.array(
    [
        151, 160, 137, 91, 90, 15, 131, 13, 201, 95, 96, 53, 194, 233, 7, 225, 140, 36, 103, 30,
        69, 142, 8, 99, 37, 240, 21, 10, 23, 190, 6, 148, 247, 120, 234, 75, 0, 26, 197, 62, 94,
        252, 219, 203, 117, 35, 11, 32, 57, 177, 33, 88, 237, 149, 56, 87, 174, 20, 125, 136, 171,
        168, 68, 175, 74, 165, 71, 134, 139, 48, 27, 166, 77, 146, 158, 231, 83, 111, 229, 122, 60,
        211, 133, 230, 220, 105, 92, 41, 55, 46, 245, 40, 244, 102, 143, 54, 65, 25, 63, 161, 1,
        216, 80, 73, 209, 76, 132, 187, 208, 89, 18, 169, 200, 196, 135, 130, 116, 188, 159, 86,
        164, 100, 109, 198, 173, 186, 3, 64, 52, 217, 226, 250, 124, 123, 5, 202, 38, 147, 118,
        126, 255, 82, 85, 212, 207, 206, 59, 227, 47, 16, 58, 17, 182, 189, 28, 42, 223, 183, 170,
        213, 119, 248, 152, 2, 44, 154, 163, 70, 221, 153, 101, 155, 167, 43, 172, 9, 129, 22, 39,
        253, 19, 98, 108, 110, 79, 113, 224, 232, 178, 185, 112, 104, 218, 246, 97, 228, 251, 34,
        242, 193, 238, 210, 144, 12, 191, 179, 162, 241, 81, 51, 145, 235, 249, 14, 239, 107, 49,
        192, 214, 31, 181, 199, 106, 157, 184, 84, 204, 176, 115, 121, 50, 45, 127, 4, 150, 254,
        138, 236, 205, 93, 222, 114, 67, 29, 24, 72, 243, 141, 128, 195, 78, 66, 215, 61, 156, 180,
    ],
    dtype=np.uint8,
)


def _grad4_bytes() -> np.ndarray:
    """The bytes of the reference's 4-D gradient table, which sits right after the permutation
    table in its compiled read-only data: 32 rows of four float32 in {0, 1, -1}, one zero per row
    (position 0, 1, 2, 3 in turn), the other three signs running (+,+,+), (+,+,-), ... (-,-,-)."""
    rows = []
    for zero_at in range(4):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            row = list(signs)
            row.insert(zero_at, 0.0)
            rows.append(row)
    return np.frombuffer(np.array(rows, dtype="<f4").tobytes(), dtype=np.uint8)


# The table as the reference reads it: the permutation twice, then the bytes that follow it.
# ``base <= BASE_MAX`` keeps every index below 255 + 255 + BASE_MAX + 1 = 638.
_PERM_EXT = np.concatenate([_PERM256, _PERM256, _grad4_bytes()]).astype(np.intp)
_PERM_LEN_NEEDED = 255 + 255 + BASE_MAX + 1
assert _PERM_EXT.size >= _PERM_LEN_NEEDED

# First two components (x, y) of the 16-row 3-D gradient table used by 2-D noise.
_GRAD_XY = np.array(
    [
        (1, 1), (-1, 1), (1, -1), (-1, -1),
        (1, 0), (-1, 0), (1, 0), (-1, 0),
        (0, 1), (0, -1), (0, 1), (0, -1),
        (1, 0), (-1, 0), (0, -1), (0, 1),
    ],
    dtype=np.float32,
)

# Composite tables indexed by ``m = A + j`` (a second-level hash index): the gradient of lattice
# corner with hash ``P[m]`` is row ``P[P[m]] & 15``.
_CODE_OF_M = (_PERM_EXT[_PERM_EXT[:_PERM_LEN_NEEDED]] & 15).astype(np.intp)
_GX_OF_M = np.ascontiguousarray(_GRAD_XY[_CODE_OF_M, 0])
_GY_OF_M = np.ascontiguousarray(_GRAD_XY[_CODE_OF_M, 1])
# Below 512 the composite tables repeat every 256 entries (the permutation is stored twice).
assert np.array_equal(_GX_OF_M[256:512], _GX_OF_M[:256]) and np.array_equal(_GY_OF_M[256:512], _GY_OF_M[:256])
_GX_OF_BYTE = np.ascontiguousarray(_GX_OF_M[:256], dtype=np.float32)
_GY_OF_BYTE = np.ascontiguousarray(_GY_OF_M[:256], dtype=np.float32)

_F32 = np.float32
_ONE = _F32(1.0)
_SIX = _F32(6.0)
_FIFTEEN = _F32(15.0)
_TEN = _F32(10.0)
_INT_LIMIT = 2.0**31


# --------------------------------------------------------------------------------------------
# validation


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidParameter(name, f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        allowed = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise InvalidParameter(name, f"{name} must be {allowed}, got {value}")
    return value


def _check_real(name: str, value, *, lo: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidParameter(name, f"{name} must be a real number, got {value!r}")
    value = float(value)
    bad = not math.isfinite(value) or value < lo or (lo_open and value == lo)
    if bad:
        rel = ">" if lo_open else ">="
        raise InvalidParameter(name, f"{name} must be a finite number {rel} {lo:g}, got {value!r}")
    return value


def _octave_schedule(octaves, persistence, lacunarity, repeatx, repeaty):
    """Validate the fractal parameters and return the reference's float32 per-octave values.

    Returns ``(freqs, amps, rxs, rys, max_amp)``: lists of float32 scalars, one per octave, as the C
    loop computes them, and the float32 sum of amplitudes (``None`` when ``octaves == 1``, where the
    reference returns the single octave's value without dividing).
    """
    octaves = _check_int("octaves", octaves, 1, 64)
    persistence = _check_real("persistence", persistence, lo=0.0)
    lacunarity = _check_real("lacunarity", lacunarity, lo=0.0, lo_open=True)
    repeatx = _check_real("repeatx", repeatx, lo=1.0)
    repeaty = _check_real("repeaty", repeaty, lo=1.0)
    with np.errstate(over="ignore", under="ignore"):
        pers, lac = _F32(persistence), _F32(lacunarity)
    if not np.isfinite(pers):
        raise InvalidParameter("persistence", f"persistence must fit a float32 (below 3.4e38), got {persistence!r}")
    if not (np.isfinite(lac) and lac > 0):
        raise InvalidParameter("lacunarity", f"lacunarity must be a positive float32 (1.2e-38 to 3.4e38), "
                                             f"got {lacunarity!r}")
    rx0, ry0 = _F32(repeatx), _F32(repeaty)
    freq, amp, total_amp = _F32(1.0), _F32(1.0), _F32(0.0)
    freqs, amps, rxs, rys = [], [], [], []
    with np.errstate(over="ignore", under="ignore"):
        for _ in range(octaves):
            rx, ry = rx0 * freq, ry0 * freq
            # The reference converts fmod(., repeat*freq) results to C int: the period must stay a
            # positive float well inside the int range for that to be defined.
            for r in (rx, ry):
                if not (np.isfinite(r) and 0 < r < _INT_LIMIT):
                    raise InvalidParameter(
                        "lacunarity",
                        "lacunarity**(octaves-1) * repeat must stay a positive float32 below 2**31;"
                        f" got {float(r)!r} at octave {len(freqs) + 1}"
                    )
            freqs.append(freq)
            amps.append(amp)
            rxs.append(rx)
            rys.append(ry)
            total_amp = total_amp + amp
            freq = freq * lac
            amp = amp * pers
    if not (np.isfinite(total_amp) and total_amp < 1e38):
        raise InvalidParameter("persistence", f"persistence**(octaves-1) overflows float32 (persistence "
                                              f"{persistence!r}, {octaves} octaves): lower one of them")
    return freqs, amps, rxs, rys, (None if octaves == 1 else total_amp)


def check_fractal(*, octaves, persistence, lacunarity, repeat=1024, max_coordinate: float = 0.0) -> None:
    """Raise :class:`~coordconv_data.errors.InvalidParameter` (naming the field) unless fractal noise
    with these parameters is finite for coordinates up to ``max_coordinate`` in magnitude."""
    freqs = _octave_schedule(octaves, persistence, lacunarity, repeat, repeat)[0]
    max_freq = max(float(f) for f in freqs)
    if not max_coordinate * max_freq < 1.0e38:
        raise InvalidParameter("lacunarity", f"coordinates up to {max_coordinate:g} times the top octave's "
                                             f"frequency {max_freq:g} overflow float32: lower lacunarity or octaves")


def _check_base(base) -> int:
    return _check_int("base", base, 0, BASE_MAX)


def _check_coords(name: str, c: np.ndarray, max_freq: float) -> None:
    if c.size == 0:
        return
    m = float(np.max(np.abs(c)))
    if not math.isfinite(m):
        raise InvalidParameter(name, f"{name} must be finite (got inf or nan)")
    if m * max_freq >= 1.0e38:
        raise InvalidParameter(name, f"{name} * frequency overflows float32 (max |{name}| = {m:g})")


# --------------------------------------------------------------------------------------------
# elementwise port


def _fade(t: np.ndarray) -> np.ndarray:
    """``t*t*t * (t*(t*6 - 15) + 10)`` in the reference's float32 order."""
    return ((t * t) * t) * ((t * ((t * _SIX) - _FIFTEEN)) + _TEN)


def _lattice(c: np.ndarray, period: np.float32, base: np.ndarray | int):
    """Return the two reduced lattice indices ``(k & 255) + base`` and ``(kk & 255) + base``."""
    k = np.floor(np.fmod(c, period)).astype(np.int32)
    kk = np.fmod((k + 1).astype(np.float32), period).astype(np.int32)
    return (k & 255) + base, (kk & 255) + base


def _grad(m: np.ndarray, xf: np.ndarray, yf: np.ndarray) -> np.ndarray:
    # gx, gy are in {-1, 0, 1}: the products are exact and the sum is rounded once, as in C.
    return _GX_OF_M[m] * xf + _GY_OF_M[m] * yf


def _noise2(x: np.ndarray, y: np.ndarray, rx, ry, base) -> np.ndarray:
    """One octave on float32 arrays of the same shape (``base``: int or int array)."""
    i, ii = _lattice(x, rx, base)
    j, jj = _lattice(y, ry, base)
    xf = x - np.floor(x)
    yf = y - np.floor(y)
    fx = _fade(xf)
    fy = _fade(yf)
    xf1 = xf - _ONE
    yf1 = yf - _ONE
    a = _PERM_EXT[i]
    b = _PERM_EXT[ii]
    g_aa = _grad(a + j, xf, yf)
    g_ba = _grad(b + j, xf1, yf)
    g_ab = _grad(a + jj, xf, yf1)
    g_bb = _grad(b + jj, xf1, yf1)
    lo = g_aa + fx * (g_ba - g_aa)
    hi = g_ab + fx * (g_bb - g_ab)
    return lo + fy * (hi - lo)


def _as_f32(name: str, v) -> np.ndarray:
    a = np.asarray(v)
    if a.dtype.kind not in "biuf":
        raise InvalidParameter(name, f"{name} must be real numbers, got dtype {a.dtype}")
    if a.dtype != np.float32:
        # Python floats reach the C code as double and are rounded to float once.
        a = a.astype(np.float64).astype(np.float32)
    return a


def pnoise2(
    x,
    y,
    octaves: int = 1,
    persistence: float = 0.5,
    lacunarity: float = 2.0,
    repeatx: float = 1024,
    repeaty: float = 1024,
    base: int = 0,
) -> np.ndarray:
    """Perlin noise equal to ``noise.pnoise2`` applied elementwise, as a float32 array.

    ``x`` and ``y`` are array-likes (broadcast together; float64 values are rounded to float32 as
    the reference does); ``octaves`` in 1..64; ``persistence >= 0``; ``lacunarity > 0``;
    ``repeatx``, ``repeaty >= 1`` (the noise tiles with these periods in lattice units);
    ``base`` an integer in 0..127 (an offset added to every lattice index, see the module
    docstring). Returns a float32 ndarray of the broadcast shape (0-d for scalars) whose values
    equal the reference's exactly. Raises ValueError for parameters outside those ranges and for
    non-finite coordinates.
    """
    freqs, amps, rxs, rys, total_amp = _octave_schedule(
        octaves, persistence, lacunarity, repeatx, repeaty
    )
    base = _check_base(base)
    x32, y32 = np.broadcast_arrays(_as_f32("x", x), _as_f32("y", y))
    max_freq = max(float(f) for f in freqs)
    _check_coords("x", x32, max_freq)
    _check_coords("y", y32, max_freq)
    return _fractal(x32, y32, (freqs, amps, rxs, rys, total_amp), base)


def _fractal(x32, y32, schedule, base) -> np.ndarray:
    """The reference's octave loop on float32 arrays (``base``: int or int array)."""
    freqs, amps, rxs, rys, total_amp = schedule
    with np.errstate(over="ignore", under="ignore"):
        if total_amp is None:
            return np.asarray(_noise2(x32, y32, rxs[0], rys[0], base), dtype=np.float32)
        total = np.zeros(x32.shape, dtype=np.float32)
        for freq, amp, rx, ry in zip(freqs, amps, rxs, rys):
            total += _noise2(x32 * freq, y32 * freq, rx, ry, base) * amp
        return np.asarray(total / total_amp, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# batched fields
#
# In a field, x depends only on the column and y only on the row, so every per-axis quantity
# (lattice indices, fractional parts, fades, the first-level hashes A and B) is computed once per
# column or row, not per pixel. Rows that share their lattice row (same j and jj) form a "run"; in a
# run every corner gradient (gx, gy) depends only on the column, so the gradient lookups are done once
# per (run, column). Per pixel only the float32 arithmetic remains:
#     g = (gx*xf) + gy*yf for the four corners, then three lerps,
# evaluated on blocks of about _BLOCK_PX pixels (cache-sized) with in-place numpy operations in
# exactly the reference's order. Where runs are long (coarse octaves) the four g planes come from
# small matrix products with one-hot row matrices instead (exact, see _planes_matmul). The fields
# are bit-identical to per-pixel noise.pnoise2 calls.

_BLOCK_PX = 16384  # pixels per block of per-pixel work (planes of 64 KiB stay in L2)
_GROUP_PX = 1 << 18  # pixels per group of fields whose per-run tables are built together
# With fine octaves (lattice cells of a few pixels) a run is a row or two and the per-run tables are
# as large as the fields: smaller groups keep them in cache (measured on 128x128 fields, 6 octaves
# at scale 32: 1.1 ms a field in groups of 4 fields against 1.9 ms in groups of 16; one octave is
# fastest in the large groups).
_GROUP_PX_FINE = 1 << 16
_FINE_CELL_PX = 8.0


def _field_coords(count: int, offsets_axis: np.ndarray, scale: float) -> np.ndarray:
    """``float32((p + offset) / scale)`` for pixel index p along one axis: shape (n, count).

    The sum and the division are done in float64 and rounded to float32 once, which is exactly what a
    Python loop calling ``noise.pnoise2((p + offset) / scale, ...)`` computes.
    """
    p = np.arange(count, dtype=np.float64)
    with np.errstate(over="ignore"):
        return ((p[None, :] + offsets_axis[:, None]) / scale).astype(np.float32)


def _validate_fields_args(n, height, width, scale, offsets, bases, dtype):
    n = _check_int("n", n, 0)
    height = _check_int("height", height, 1)
    width = _check_int("width", width, 1)
    scale = _check_real("scale", scale, lo=0.0, lo_open=True)
    if offsets is None:
        offsets = np.zeros((n, 2), dtype=np.float64)
    else:
        offsets = np.asarray(offsets)
        if offsets.shape != (n, 2) or offsets.dtype.kind not in "biuf":
            raise InvalidParameter("offsets",
                f"offsets must be a real array of shape ({n}, 2), got {offsets.dtype} {offsets.shape}"
            )
        offsets = offsets.astype(np.float64)
        if not np.all(np.isfinite(offsets)):
            raise InvalidParameter("offsets", "offsets must be finite")
    if bases is None:
        bases = np.zeros(n, dtype=np.intp)
    else:
        bases = np.asarray(bases)
        if bases.shape != (n,) or bases.dtype.kind not in "iu":
            raise InvalidParameter("bases",
                f"bases must be an integer array of shape ({n},), got {bases.dtype} {bases.shape}"
            )
        if n and (bases.min() < 0 or bases.max() > BASE_MAX):
            raise InvalidParameter("bases",
                f"bases must be in 0..{BASE_MAX}, got values in {bases.min()}..{bases.max()}"
            )
        bases = bases.astype(np.intp)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InvalidParameter("dtype", f"dtype must be float32 or float64, got {dtype}")
    return n, height, width, scale, offsets, bases, dtype


def _octave_tables(xs, ys, rx, ry, base, max_rows):
    """Per-run tables for one octave of a group of G fields.

    ``xs`` (G, W) and ``ys`` (G, H) are the octave's float32 coordinates (already times freq),
    ``base`` (G, 1). Returns ``(s, counts, yf, fy)``: ``s`` (9, T, W) float32 holds, for each of
    the T runs (all fields' rows in order; a run is at most ``max_rows`` rows), the planes
    ``gx*xf, gy`` of corners AA, BA, AB, BB (with xf or xf-1) and the x fade; ``counts`` (T,) the
    rows in each run; ``yf``, ``fy`` (G*H,) each row's fractional y and its fade.
    """
    g, w = xs.shape
    h = ys.shape[1]
    i, ii = _lattice(xs, rx, base)
    j, jj = _lattice(ys, ry, base)
    xf = xs - np.floor(xs)
    yf = ys - np.floor(ys)
    # run starts: the first row of each field, every row whose (j, jj) differs from the previous
    # row's, and every max_rows-th row (keeps blocks bounded)
    start = np.empty((g, h), dtype=bool)
    start[:, 0] = True
    np.not_equal(j[:, 1:], j[:, :-1], out=start[:, 1:])
    start[:, 1:] |= jj[:, 1:] != jj[:, :-1]
    if max_rows < h:
        start[:, ::max_rows] = True
    pos = np.flatnonzero(start)  # row (in the group's stacked rows) where each run starts
    counts = np.empty_like(pos)
    np.subtract(pos[1:], pos[:-1], out=counts[:-1])
    counts[-1] = g * h - pos[-1]
    field = pos // h
    # per (run, column) operands, materialised contiguous (broadcasting ufuncs are slow here)
    xf_run = xf.take(field, axis=0)
    xf1_run = xf_run - _ONE
    s = np.empty((9, pos.size, w), dtype=np.float32)
    if int(np.max(base)) <= 1:
        # Every second-level index m = P[i] + j is below 512, where the tables repeat every 256
        # entries: byte arithmetic (wrapping at 256) and OpenCV's 256-entry table lookups do it,
        # with an eighth of the memory traffic of index arrays.
        import cv2

        a_run = _PERM_EXT.take(i).astype(np.uint8).take(field, axis=0)
        b_run = _PERM_EXT.take(ii).astype(np.uint8).take(field, axis=0)
        j_run = (j.ravel().take(pos) & 255).astype(np.uint8)[:, None]
        jj_run = (jj.ravel().take(pos) & 255).astype(np.uint8)[:, None]
        m8 = np.empty((pos.size, w), dtype=np.uint8)
        corners = ((a_run, j_run, xf_run), (b_run, j_run, xf1_run),
                   (a_run, jj_run, xf_run), (b_run, jj_run, xf1_run))
        for c, (first, second, x_part) in enumerate(corners):
            np.add(first, second, out=m8)
            cv2.LUT(m8, _GX_OF_BYTE, dst=s[2 * c])
            s[2 * c] *= x_part  # gx in {-1, 0, 1}: exact
            cv2.LUT(m8, _GY_OF_BYTE, dst=s[2 * c + 1])
    else:
        j_run = j.ravel().take(pos).repeat(w).reshape(-1, w)
        jj_run = jj.ravel().take(pos).repeat(w).reshape(-1, w)
        a_run = _PERM_EXT.take(i).take(field, axis=0)
        b_run = _PERM_EXT.take(ii).take(field, axis=0)
        m = np.empty((pos.size, w), dtype=np.intp)
        corners = ((a_run, j_run, xf_run), (b_run, j_run, xf1_run),
                   (a_run, jj_run, xf_run), (b_run, jj_run, xf1_run))
        for c, (first, second, x_part) in enumerate(corners):
            np.add(first, second, out=m)
            # indices are in range by construction; mode="clip" only skips numpy's bounds check
            _GX_OF_M.take(m, out=s[2 * c], mode="clip")
            s[2 * c] *= x_part  # gx in {-1, 0, 1}: exact
            _GY_OF_M.take(m, out=s[2 * c + 1], mode="clip")
    _fade(xf).take(field, axis=0, out=s[8], mode="clip")
    return s, counts, pos, yf.ravel(), _fade(yf).ravel()


def _fill_group(out2d, xc, yr, bases, schedule, max_rows):
    """Write a group of G fields into ``out2d`` (G*H, W), octave by octave, block by block."""
    freqs, amps, rxs, rys, total_amp = schedule
    w = xc.shape[1]
    h = yr.shape[1]
    base = bases[:, None]
    cap = (2 * max_rows) * w
    bufs = np.empty((6, cap), dtype=np.float32)
    used_matmul = False
    for octave, (freq, amp, rx, ry) in enumerate(zip(freqs, amps, rxs, rys)):
        s, counts, starts, yf, fy = _octave_tables(xc * freq, yr * freq, rx, ry, base, max_rows)
        # blocks of whole runs: a run belongs to block (start row // max_rows), so a block has
        # fewer than 2 * max_rows rows
        block = starts // max_rows
        firsts = np.flatnonzero(block[1:] != block[:-1]) + 1
        bounds = [0, *firsts.tolist(), counts.size]
        row_bounds = [*starts.take(bounds[:-1]).tolist(), out2d.shape[0]]
        for q0, q1, r0, r1 in zip(bounds[:-1], bounds[1:], row_bounds[:-1], row_bounds[1:]):
            rows = r1 - r0
            runs = q1 - q0
            if runs * _MATMUL_MIN_RUN <= rows:
                used_matmul = True
                g_aa, g_ba, g_ab, g_bb, fx, fyp = _planes_matmul(
                    s, counts, q0, q1, yf[r0:r1], bufs[:, : rows * w].reshape(6, rows, w)
                )
            else:
                g_aa, g_ba, g_ab, g_bb, fx, fyp = _planes_repeat(
                    s, counts, q0, q1, yf[r0:r1], bufs[:, : rows * w].reshape(6, rows, w)
                )
            np.copyto(fyp, fy[r0:r1, None])
            # lerp(fy, lerp(fx, AA, BA), lerp(fx, AB, BB)) in the reference's order
            g_ba -= g_aa
            g_ba *= fx
            g_aa += g_ba
            g_bb -= g_ab
            g_bb *= fx
            g_ab += g_bb
            g_ab -= g_aa
            g_ab *= fyp
            dst = out2d[r0:r1]
            if octave == 0:
                np.add(g_aa, g_ab, out=dst)
            else:
                g_aa += g_ab
                g_aa *= amp
                dst += g_aa
    if total_amp is not None:
        out2d += _F32(0.0)  # the reference's total starts at +0.0 (turns a -0.0 sum into +0.0)
        out2d /= total_amp
    # The matrix-product path can differ from the reference only in the sign of a zero (its sums
    # start from +0.0); a signed zero never changes a non-zero result, so only pixels that came out
    # exactly zero can differ: recompute those with the elementwise port.
    zero = np.flatnonzero(out2d == 0) if used_matmul else ()
    if len(zero):
        row, col = np.divmod(zero, w)
        field, i = np.divmod(row, h)
        out2d.ravel()[zero] = _fractal(xc[field, col], yr[field, i], schedule, bases[field])


# A block uses the matrix-product expansion when its runs average at least this many rows.
_MATMUL_MIN_RUN = 6


def _planes_matmul(s, counts, q0, q1, yf, planes):
    """Gradient planes of a block by matrix products (long runs).

    Row r of the block lies in run k(r); with the one-hot matrix R[r, k] = 1 the corner value
    ``g = gx*xf + gy*yf`` is ``[R | yf*R] @ [gx*xf ; gy]``: each sum has exactly two non-zero
    terms, so BLAS returns ``round(gx*xf + gy*yf)``, the reference's value, whatever its summation
    order (up to the sign of a zero result).
    """
    runs = q1 - q0
    rows = planes.shape[1]
    local = np.arange(runs).repeat(counts[q0:q1])
    ar = np.arange(rows)
    m_y = np.zeros((rows, 2 * runs), dtype=np.float32)
    m_y[ar, local] = _ONE
    m_y[ar, runs + local] = yf
    m_y1 = m_y.copy()
    m_y1[ar, runs + local] = yf - _ONE
    tables = np.ascontiguousarray(s[:8, q0:q1]).reshape(4, 2 * runs, -1)
    np.matmul(m_y, tables[:2], out=planes[:2])  # corners AA, BA (y)
    np.matmul(m_y1, tables[2:], out=planes[2:4])  # corners AB, BB (y - 1)
    np.matmul(m_y[:, :runs], s[8, q0:q1], out=planes[4])  # the x fade, row-repeated
    return planes


def _planes_repeat(s, counts, q0, q1, yf, planes):
    """Gradient planes of a block by repeating the run tables row-wise (short runs)."""
    rows = planes.shape[1]
    if q1 - q0 == rows:  # every run is one row: the tables are the planes
        rep = s[:, q0:q1]
    else:
        rep = s[:, q0:q1].repeat(counts[q0:q1], axis=1)
    p_aa, q_aa, p_ba, q_ba, p_ab, q_ab, p_bb, q_bb, fx = rep
    yp, y1p = planes[0], planes[1]
    np.copyto(yp, yf[:, None])
    np.subtract(yp, _ONE, out=y1p)
    # g = gx*xf + gy*yf, as the reference: the product is exact, the sum rounded once
    q_aa *= yp
    q_aa += p_aa
    q_ba *= yp
    q_ba += p_ba
    q_ab *= y1p
    q_ab += p_ab
    q_bb *= y1p
    q_bb += p_bb
    return q_aa, q_ba, q_ab, q_bb, fx, planes[5]


def perlin_fields(
    n: int,
    height: int,
    width: int,
    *,
    scale: float,
    octaves: int = 1,
    persistence: float = 0.5,
    lacunarity: float = 2.0,
    offsets=None,
    bases=None,
    repeat: float = 1024,
    dtype=np.float32,
) -> np.ndarray:
    """Generate ``n`` Perlin noise fields of ``height`` x ``width`` at once, shape (n, H, W).

    Pixel ``(i, j)`` (row i, column j) of field ``k`` is exactly::

        noise.pnoise2((j + offsets[k, 0]) / scale, (i + offsets[k, 1]) / scale,
                      octaves, persistence, lacunarity, repeat, repeat, bases[k])

    with the sums and divisions in float64 (as Python computes them) and the result rounded to
    float32 once: x runs along columns, y along rows, ``scale`` is the size of one lattice cell
    (one period of the first octave's gradient grid) in pixels. ``offsets`` (n, 2) are real
    pixel offsets (x, y) per field (default zeros): random offsets are how to get independent
    fields. ``bases`` (n,) integers in 0..127 (default zeros) are the reference's ``base`` per field.
    ``repeat`` (>= 1) is the tiling period in lattice units for both axes. Other parameters are as
    in :func:`pnoise2`. Values are bit-identical to the reference (float32); ``dtype=float64``
    only widens the result. Whole non-negative pixel offsets with a power-of-two ``scale`` (1 to 64)
    and lacunarity (whole periods ``repeat * lacunarity**k``) take a faster path to the same values.
    """
    n, height, width, scale, offsets, bases, dtype = _validate_fields_args(
        n, height, width, scale, offsets, bases, dtype
    )
    schedule = _octave_schedule(octaves, persistence, lacunarity, repeat, repeat)
    out = np.empty((n, height, width), dtype=np.float32)
    if n == 0:
        return out.astype(dtype, copy=False)
    plan = _patch_plan(schedule, scale, offsets, height, width)
    if plan is not None:
        with np.errstate(over="ignore", under="ignore"):
            _fill_from_patches(out, plan, schedule, offsets.astype(np.int64), bases)
        return out.astype(dtype, copy=False)
    xc = _field_coords(width, offsets[:, 0], scale)
    yr = _field_coords(height, offsets[:, 1], scale)
    max_freq = max(float(f) for f in schedule[0])
    _check_coords("x coordinate (j + offset_x) / scale", xc, max_freq)
    _check_coords("y coordinate (i + offset_y) / scale", yr, max_freq)
    max_rows = max(1, _BLOCK_PX // width)
    group_px = _GROUP_PX if scale / max_freq >= _FINE_CELL_PX else _GROUP_PX_FINE
    group = max(1, group_px // (height * width))
    with np.errstate(over="ignore", under="ignore"):
        for g0 in range(0, n, group):
            g1 = min(n, g0 + group)
            _fill_group(
                out[g0:g1].reshape(-1, width), xc[g0:g1], yr[g0:g1], bases[g0:g1], schedule,
                max_rows,
            )
    return out.astype(dtype, copy=False)


def minmax_scale_fields(fields, *, dtype=np.float32) -> np.ndarray:
    """Scale each field of a batch (..., H, W) to [0, 1] independently: ``(f - min) / (max - min)``.

    Min and max are taken over the last two axes. A constant field maps to all zeros (never NaN).
    Inputs must be finite. Returns a new array of ``dtype`` (float32 or float64).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InvalidParameter("dtype", f"dtype must be float32 or float64, got {dtype}")
    f = np.asarray(fields)
    if f.ndim < 2:
        raise InvalidParameter("fields", f"fields must have at least 2 dimensions (..., H, W), got shape {f.shape}")
    if f.dtype.kind not in "biuf":
        raise InvalidParameter("fields", f"fields must be real numbers, got dtype {f.dtype}")
    f = f.astype(dtype, copy=True)
    if f.size == 0:
        return f
    if not np.all(np.isfinite(f)):
        raise InvalidParameter("fields", "fields must be finite")
    lo = f.min(axis=(-2, -1), keepdims=True)
    span = f.max(axis=(-2, -1), keepdims=True) - lo
    f -= lo
    # a constant field has span 0 and f - lo == 0 everywhere: divide by 1 instead
    f /= np.where(span > 0, span, np.ones_like(span))
    return f


# --------------------------------------------------------------------------------------------
# fields at whole-pixel offsets with power-of-two cells: mosaics of cached cell patches
#
# When an octave's lattice cell is a whole power-of-two number of pixels ``c`` and the offsets are
# whole pixels, every coordinate that octave sees is exact in float32, and the fractional parts inside
# every cell of every field are the same ``a / c`` (a = 0..c-1). A pixel's value then depends only on
# its place in its cell and on the cell's four corner gradients, of which there are 8 kinds (the 16
# gradient rows repeat): 8**4 cell patterns. Each pattern's c x c patch is computed once by the
# reference's float32 operations (bit for bit those of every pixel), cached per cell size, and the
# octave is assembled from the patches of its cells: copies instead of arithmetic. Several octaves are
# then summed in float32 in exactly the reference's order (see _fill_from_patches).
#
# Why the coordinates are exact. Pixel N = p + offset is a whole number with 0 <= N < 2**22; scale
# and the octave's frequency (float32, as the reference's loop computes it) are powers of two, so
# c = scale / freq is one too.
# * x = float32(N / scale) and x * freq = N / c are exact: power-of-two scalings of a number of at most
#   22 bits, far from float32's overflow and underflow (freq < 2**31, see _octave_schedule).
# * For c >= 1 the lattice index floor(x * freq) is N // c and the fraction (N % c) / c. The period
#   rx = repeat * freq must be a whole number: then fmod (always exact) and floor give
#   i = (N // c) % rx, and i + 1 <= 2**22 converts to float32 exactly, so ii = (i + 1) % rx; ``& 255``
#   and ``+ base`` are integer operations. The ii of cell I is the i of cell I + 1, so each lattice
#   point's corner gradient is looked up once and shared by the four cells around it.
# * For c <= 1 (with several octaves) every x * freq = N / c is a whole number: every pixel is a
#   lattice point, where the noise is +-0 (xf = yf = 0 make every corner's dot product and both fades
#   zero, whatever the gradients). ``amp`` is finite, so ``+-0 * amp`` is +-0, and the reference's
#   total starts at +0.0 and so is never -0.0 (a sum is -0.0 only when both terms are): adding +-0
#   leaves it unchanged and such an octave is skipped. With one octave the sign of that zero is the
#   result, so there c = 1 is assembled like any other cell.

_GRAD_CLASSES, _CLASS_OF_CODE = np.unique(_GRAD_XY, axis=0, return_inverse=True)
_CLASS_OF_CODE = _CLASS_OF_CODE.reshape(-1).astype(np.intp)
_CLASS_OF_M = _CLASS_OF_CODE[_CODE_OF_M]  # gradient class of the corner whose second-level index is m
_CLASS_OF_M16 = _CLASS_OF_M.astype(np.uint16)
# Largest cell (pixels) served from patches: 4096 patches of 64 x 64 float32 are 64 MiB, and the
# tables of every size up to it together about 85 MiB per process (a table's pages are touched only as
# its patterns are computed). Fields with a larger cell in any octave take the general path.
_PATCH_MAX = 64
_PATCHES: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # cell size -> (patches, computed?)
# Tables of cells up to this size are computed whole on first use (at most 4 MiB, about 15 ms):
# small cells are many per field, and a whole table spares every later call the look-up of which
# patterns are missing. Larger ones are filled as their patterns first occur.
_PATCH_EAGER = 16
# Pixel coordinates (offset + index) below this stay exact in float32 with a wide margin (24 bits).
_PATCH_COORD_LIMIT = 2**22
# Float32 bytes of one group's summed mosaic (several fields at once; a few arrays of this size live).
_MOSAIC_BYTES = 1 << 21


def _is_pow2(v: float) -> bool:
    return v > 0 and math.isfinite(v) and math.frexp(v)[0] == 0.5


def _patch_plan(schedule, scale, offsets, height, width):
    """The patch path's plan for these fields, or ``None`` when a condition fails (then the general
    path computes them).

    Returns one entry per octave: ``(cell, rx, ry)`` (whole cell size in pixels and whole periods,
    from the reference's float32 schedule) for an octave assembled from patches, ``None`` for an octave
    that adds nothing to the total (cells of at most one pixel with several octaves). See the section
    comment for why these conditions make the patch path exact.
    """
    freqs, _, rxs, rys, total_amp = schedule
    s = float(scale)
    if not (_is_pow2(s) and s >= 1.0) or offsets.size == 0:
        return None
    o = offsets
    if not (np.all(o == np.floor(o)) and o.min() >= 0 and o.max() + max(height, width) < _PATCH_COORD_LIMIT):
        return None
    plan = []
    for freq, rx, ry in zip(freqs, rxs, rys):
        f = float(freq)
        if not _is_pow2(f):
            return None
        cell = s / f  # a power of two, exactly
        if cell <= 1.0 and total_amp is not None:
            plan.append(None)  # lattice points only: +-0, a no-op on the total
            continue
        if cell > _PATCH_MAX:
            return None
        rx, ry = float(rx), float(ry)
        if rx != math.floor(rx) or ry != math.floor(ry):
            return None
        plan.append((int(cell), int(rx), int(ry)))
    return plan


def _patches(size: int, first_rows: np.ndarray) -> np.ndarray:
    """The cache of ``size`` x ``size`` patches (8**4, size, size), with the patterns whose first rows
    (``pattern * size``) are ``first_rows`` computed."""
    table, done = _PATCHES.get(size, (None, None))
    if table is None:
        table = np.empty((8**4, size, size), dtype=np.float32)
        done = np.zeros(8**4, dtype=bool)
        _PATCHES[size] = (table, done)
        if size <= _PATCH_EAGER:
            first_rows = np.arange(8**4) * size
    if done.all():
        return table
    keys = first_rows // size
    todo = np.unique(keys[~done[keys]])
    xf = (np.arange(size, dtype=np.float32) / _F32(size))[None, :]
    yf = (np.arange(size, dtype=np.float32) / _F32(size))[:, None]
    xf1, yf1 = xf - _ONE, yf - _ONE
    fx, fy = _fade(xf), _fade(yf)
    step = max(1, (1 << 17) // (size * size))  # patterns at a time: arrays of 512 KiB stay in cache
    for k0 in range(0, todo.size, step):
        part = todo[k0 : k0 + step]
        cls = np.stack([part // 512, part // 64 % 8, part // 8 % 8, part % 8])  # AA, BA, AB, BB
        gx = _GRAD_CLASSES[cls, 0].astype(np.float32)[..., None, None]
        gy = _GRAD_CLASSES[cls, 1].astype(np.float32)[..., None, None]
        with np.errstate(over="ignore", under="ignore"):
            # _noise2's operations, in its order, with the corners' gradients given directly
            g_aa = gx[0] * xf + gy[0] * yf
            g_ba = gx[1] * xf1 + gy[1] * yf
            g_ab = gx[2] * xf + gy[2] * yf1
            g_bb = gx[3] * xf1 + gy[3] * yf1
            lo = g_aa + fx * (g_ba - g_aa)
            hi = g_ab + fx * (g_bb - g_ab)
            table[part] = lo + fy * (hi - lo)
    done[todo] = True
    return table


def _cell_keys(first: np.ndarray, ny: int, nx: int, rx: int, ry: int, bases: np.ndarray, cell: int) -> np.ndarray:
    """First patch rows (m, ny, nx) of ny x nx cells per field from cell ``first`` (m, 2) = (x, y) on.

    A cell's pattern is ``AA*512 + BA*64 + AB*8 + BB`` with the gradient classes of its corners, as
    :func:`_patches` reads it; its patch starts at row ``pattern * cell`` of the table's rows.
    """
    base = bases[:, None]
    i = (first[:, 0:1] + np.arange(nx + 1)) % rx & 255  # reduced lattice columns (m, nx + 1)
    j = (first[:, 1:2] + np.arange(ny + 1)) % ry & 255
    a = _PERM_EXT[i + base]
    # gradient class of lattice point (J, I): that of second-level index P[i] + j (uint16: small
    # integers keep the arithmetic cheap)
    cls = _CLASS_OF_M16.take(a[:, None, :] + (j + base)[:, :, None])  # (m, ny + 1, nx + 1)
    keys = cls[:, :-1, :-1] << 9
    keys |= cls[:, :-1, 1:] << 6
    keys |= cls[:, 1:, :-1] << 3
    keys |= cls[:, 1:, 1:]
    return np.multiply(keys, np.intp(cell))  # in intp: pattern * cell passes 2**16


def _fill_from_patches(out: np.ndarray, plan, schedule, offsets: np.ndarray, bases: np.ndarray) -> None:
    """Fields at whole-pixel ``offsets`` (n, 2) into ``out`` (n, H, W) from cell patches, octave by
    octave as ``plan`` (from :func:`_patch_plan`) says."""
    n, h, w = out.shape
    amps, total_amp = schedule[1], schedule[4]
    octaves = [(*p, amp) for p, amp in zip(plan, amps) if p is not None]
    if not octaves:  # several octaves, all no-ops: the reference's +0.0 total over max
        out[...] = _F32(0.0) / total_amp
        return
    # Every octave of a field is assembled on one pixel grid starting at a corner of the field's
    # coarsest cell (a multiple of every finer cell), so the octaves add up mosaic on mosaic, for a
    # group of fields at once, and each field's window is cut out once at the end.
    big = max(cell for cell, *_ in octaves)
    cells_x, cells_y = (w + big - 2) // big + 1, (h + big - 2) // big + 1  # coarsest cells a field touches
    ys, xs = cells_y * big, cells_x * big
    origin = offsets // big * big  # pixel (x, y) of each field's mosaic corner
    phase = offsets - origin  # where the field starts in it
    group = max(1, _MOSAIC_BYTES // (ys * xs * 4))
    # buffers reused by every group and octave (fresh large temporaries cost page faults each time)
    total = np.empty((min(group, n), ys, xs), dtype=np.float32)
    term = np.empty_like(total) if total_amp is not None else None
    fine = min(cell for cell, *_ in octaves)
    which_buf = np.empty(total.shape[0] * ys * (xs // fine), dtype=np.intp)
    for g0 in range(0, n, group):
        g1 = min(n, g0 + group)
        m = g1 - g0
        for k, (cell, rx, ry, amp) in enumerate(octaves):
            ny, nx = ys // cell, xs // cell
            first_row = _cell_keys(origin[g0:g1] // cell, ny, nx, rx, ry, bases[g0:g1], cell)
            rows = _patches(cell, first_row.ravel()).reshape(-1, cell)  # row pattern * cell + r
            # Mosaic row r of cell row Y is row r of each of its patches side by side: one take of
            # whole patch rows lays the mosaic out in place, (m, ny, cell, nx) rows of cell floats.
            which = which_buf[: m * ny * cell * nx].reshape(m, ny, cell, nx)
            np.add(first_row[:, :, None, :], np.arange(cell)[:, None], out=which)
            dst = (total if k == 0 or total_amp is None else term)[:m]
            # indices are in range by construction; mode="clip" only spares numpy's bounds check
            # (and the copy of ``out`` it makes in the default mode)
            np.take(rows, which, axis=0, out=dst.reshape(m, ny, cell, nx, cell), mode="clip")
            if total_amp is None:  # one octave: the reference returns noise2's value itself
                continue
            dst *= amp
            if k == 0:
                # total = 0.0f + noise * amp, as in C (skipped octaves left the total at +0.0): the
                # +0.0 turns a -0.0 product into +0.0
                dst += _F32(0.0)
            else:
                total[:m] += dst  # total += noise * amp
        for f in range(m):
            px, py = phase[g0 + f]
            window = total[f, py : py + h, px : px + w]
            if total_amp is None:
                out[g0 + f] = window
            else:
                np.divide(window, total_amp, out=out[g0 + f])
