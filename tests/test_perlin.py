"""coordconv_data.generate.perlin against the reference, noise.pnoise2 (noise 1.2.2).

The contract is ``max |ours - reference| < 1e-6``; the port follows the C code's float32 operations in
order, and on the x86-64 reference build it is bit-identical, which the ``*_bits`` checks assert.
For ``base >= 2`` the reference reads past its permutation table into the bytes of its GRAD4 table
(see the module docstring); the random-coordinate tests with bases 17 and 127 exercise those reads.
"""

from __future__ import annotations

import itertools
import platform
import subprocess
import sys

import numpy as np
import pytest

from coordconv_data.generate import perlin
from coordconv_data.generate.perlin import BASE_MAX, minmax_scale_fields, perlin_fields, pnoise2

noise = pytest.importorskip("noise")

TOL = 1e-6
# Bit-for-bit equality is a property of the reference build (x86-64, no FMA contraction).
X86 = platform.machine().lower() in ("x86_64", "amd64")


def reference(x, y, *args) -> np.ndarray:
    """noise.pnoise2 per element (float32, as the C code computes it)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = [noise.pnoise2(float(a), float(b), *args) for a, b in zip(x.ravel(), y.ravel())]
    return np.array(out, dtype=np.float64).astype(np.float32).reshape(x.shape)


def compare(got, want):
    """Return (max abs diff, bit-identical) and check dtype and shape."""
    assert got.dtype == np.float32
    assert got.shape == want.shape
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0.0))
    return diff, bool(np.array_equal(got.view(np.uint32), want.view(np.uint32)))


def random_coords(rng, n):
    """A mix of small, fractional, negative, large and lattice-exact coordinates."""
    parts = [
        rng.uniform(-8, 8, n),
        rng.uniform(-3000, 3000, n),
        rng.uniform(-1e5, 1e5, n),
        np.round(rng.uniform(-300, 300, n)),  # on lattice points
        rng.integers(-64, 64, n) * 4.0 + rng.choice([-1e-6, 0.0, 1e-6], n),  # near repeat seams
    ]
    return np.concatenate(parts)


@pytest.mark.parametrize("base", [0, 1, 17, 127])
def test_pnoise2_matches_reference_over_parameter_grid(base):
    rng = np.random.default_rng(1000 + base)
    worst, all_exact, cases = 0.0, True, 0
    grid = itertools.product(range(1, 9), (0.25, 0.5, 0.8), (1.5, 2.0, 3.0), (4, 16, 1024))
    for octaves, persistence, lacunarity, rep in grid:
        x = random_coords(rng, 5)
        y = random_coords(rng, 5)
        rng.shuffle(y)
        args = (octaves, persistence, lacunarity, rep, rep, base)
        diff, exact = compare(pnoise2(x, y, *args), reference(x, y, *args))
        assert diff < TOL, f"{args}: max abs diff {diff}"
        worst, all_exact, cases = max(worst, diff), all_exact and exact, cases + 1
    print(f"base={base}: {cases} parameter sets, max abs diff {worst:g}, bit-exact: {all_exact}")
    if X86:
        assert all_exact


def test_pnoise2_matches_reference_many_points_and_odd_repeats():
    rng = np.random.default_rng(7)
    x = random_coords(rng, 400)
    y = random_coords(rng, 400)
    rng.shuffle(y)
    for args in [
        (),
        (1, 0.5, 2.0, 1024, 1024, 0),
        (3, 0.5, 2.0, 13.5, 7, 5),  # non-integer and unequal periods
        (2, 0.0, 0.5, 1, 3, 2),  # persistence 0, lacunarity < 1, period 1
        (5, 1.3, 2.5, 300, 300, 99),
    ]:
        diff, exact = compare(pnoise2(x, y, *args), reference(x, y, *args))
        assert diff < TOL, f"{args}: {diff}"
        if X86:
            assert exact, args


def test_pnoise2_base_reads_past_the_table():
    """Cells whose second-level hash index P[i] + j exceeds 511 (only possible for base >= 2)."""
    base = 127
    rng = np.random.default_rng(3)
    x = rng.uniform(-2000, 2000, 4000)
    y = rng.uniform(-2000, 2000, 4000)
    i = (np.floor(np.fmod(x.astype(np.float32), np.float32(1024))).astype(np.int64) & 255) + base
    j = (np.floor(np.fmod(y.astype(np.float32), np.float32(1024))).astype(np.int64) & 255) + base
    past = perlin._PERM256[i % 256].astype(np.int64) + j > 511
    assert past.sum() > 100
    diff, exact = compare(pnoise2(x[past], y[past], base=base), reference(x[past], y[past], 1, 0.5, 2.0, 1024, 1024, base))
    assert diff < TOL
    if X86:
        assert exact


def test_pnoise2_shapes_dtypes_and_broadcasting():
    out = pnoise2(0.3, 0.7)
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float32
    assert float(out) == np.float32(noise.pnoise2(0.3, 0.7))
    xs = np.linspace(-2, 2, 5, dtype=np.float32)[None, :]
    ys = np.linspace(-1, 3, 3)[:, None]
    out = pnoise2(xs, ys, octaves=3)
    assert out.shape == (3, 5) and out.dtype == np.float32
    xx, yy = np.broadcast_arrays(xs, ys)
    assert np.array_equal(out, reference(xx, yy, 3))
    ints = pnoise2(np.arange(-3, 4), 2)  # integers are lattice points
    assert np.array_equal(ints, reference(np.arange(-3, 4), np.full(7, 2.0)))
    assert pnoise2(np.empty((0, 4)), 1.0).shape == (0, 4)


@pytest.mark.parametrize(
    "n,h,w,scale,octaves,persistence,lacunarity,rep",
    [
        (3, 9, 13, 3.7, 1, 0.5, 2.0, 1024),
        (2, 16, 16, 5.0, 3, 0.8, 1.5, 4),
        (2, 7, 20, 0.6, 2, 0.25, 3.0, 16),  # cells smaller than a pixel
        (2, 12, 10, 2.0, 8, 0.5, 2.0, 1024),
        (1, 20, 6, 40.0, 4, 0.5, 2.0, 1024),  # one lattice cell covers the field
    ],
)
def test_fields_match_per_pixel_reference(n, h, w, scale, octaves, persistence, lacunarity, rep):
    rng = np.random.default_rng(n * 100 + h)
    offsets = rng.uniform(-500, 500, (n, 2))
    bases = rng.integers(0, BASE_MAX + 1, n)
    got = perlin_fields(
        n, h, w, scale=scale, octaves=octaves, persistence=persistence, lacunarity=lacunarity,
        offsets=offsets, bases=bases, repeat=rep,
    )
    want = np.array(
        [
            [
                [
                    noise.pnoise2((j + offsets[k, 0]) / scale, (i + offsets[k, 1]) / scale,
                                  octaves, persistence, lacunarity, rep, rep, int(bases[k]))
                    for j in range(w)
                ]
                for i in range(h)
            ]
            for k in range(n)
        ],
        dtype=np.float32,
    )
    diff, exact = compare(got, want)
    assert diff < TOL
    if X86:
        assert exact


@pytest.mark.parametrize("block_px", [None, 48])
@pytest.mark.parametrize("octaves,scale", [(1, 24.0), (5, 30.0), (2, 0.7)])
def test_fields_equal_elementwise_pnoise2(monkeypatch, block_px, octaves, scale):
    """Larger batches (several groups, blocks, split runs) against the elementwise port."""
    if block_px is not None:
        monkeypatch.setattr(perlin, "_BLOCK_PX", block_px)  # runs split, tiny blocks
        monkeypatch.setattr(perlin, "_GROUP_PX", 3000)  # several groups
    n, h, w = 5, 40, 33
    rng = np.random.default_rng(octaves)
    offsets = rng.uniform(-1e4, 1e4, (n, 2))
    bases = rng.integers(0, BASE_MAX + 1, n)
    got = perlin_fields(n, h, w, scale=scale, octaves=octaves, offsets=offsets, bases=bases)
    x = ((np.arange(w)[None, None, :] + offsets[:, 0, None, None]) / scale)
    y = ((np.arange(h)[None, :, None] + offsets[:, 1, None, None]) / scale)
    want = np.stack([pnoise2(x[k], y[k], octaves, base=int(bases[k])) for k in range(n)])
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("octaves", [1, 2])
def test_fields_signed_zeros_at_lattice_points(octaves):
    """Lattice points give exact zeros, some of them -0.0 in the reference; bits must match."""
    n, h, w, scale = 6, 48, 48, 8.0
    bases = np.arange(n)
    got = perlin_fields(n, h, w, scale=scale, octaves=octaves, bases=bases)
    want = np.array(
        [[[noise.pnoise2(j / scale, i / scale, octaves, 0.5, 2.0, 1024, 1024, int(b))
           for j in range(w)] for i in range(h)] for b in bases],
        dtype=np.float32,
    )
    assert np.sum(want == 0) > 100
    if octaves == 1:
        assert np.sum((want == 0) & np.signbit(want)) > 0
    assert np.array_equal(got, want)
    if X86:
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_fields_defaults_dtype_and_determinism():
    a = perlin_fields(2, 8, 9, scale=4.0)
    assert a.shape == (2, 8, 9) and a.dtype == np.float32
    assert np.array_equal(a[0], a[1])  # zero offsets and bases: identical fields
    assert a[0, 0, 0] == 0.0  # the origin is a lattice point
    b = perlin_fields(2, 8, 9, scale=4.0, dtype=np.float64)
    assert b.dtype == np.float64 and np.array_equal(a.astype(np.float64), b)
    offsets = np.array([[0.5, 1.25], [-7.0, 3.0]])
    c1 = perlin_fields(2, 8, 9, scale=4.0, octaves=3, offsets=offsets, bases=[0, 5])
    c2 = perlin_fields(2, 8, 9, scale=4.0, octaves=3, offsets=offsets, bases=[0, 5])
    assert np.array_equal(c1, c2) and not np.array_equal(c1[0], c1[1])
    assert perlin_fields(0, 8, 9, scale=4.0).shape == (0, 8, 9)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(octaves=0), r"octaves must be in 1\.\.64"),
        (dict(octaves=2.0), "octaves must be an integer"),
        (dict(octaves=True), "octaves must be an integer"),
        (dict(base=-1), r"base must be in 0\.\.127"),
        (dict(base=128), r"base must be in 0\.\.127"),
        (dict(base=1.0), "base must be an integer"),
        (dict(repeatx=0), "repeatx must be a finite number >= 1"),
        (dict(repeaty=float("inf")), "repeaty must be a finite number >= 1"),
        (dict(persistence=-0.5), "persistence must be a finite number >= 0"),
        (dict(persistence=float("nan")), "persistence must be a finite number >= 0"),
        (dict(lacunarity=0.0), "lacunarity must be a finite number > 0"),
        (dict(lacunarity="2"), "lacunarity must be a real number"),
        (dict(octaves=40, lacunarity=3.0), "lacunarity\\*\\*\\(octaves-1\\) \\* repeat"),
    ],
)
def test_pnoise2_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pnoise2(0.5, 0.5, **kwargs)


def test_pnoise2_rejects_bad_coordinates():
    with pytest.raises(ValueError, match="x must be finite"):
        pnoise2([0.0, np.nan], 0.0)
    with pytest.raises(ValueError, match="y must be finite"):
        pnoise2(0.0, np.inf)
    with pytest.raises(ValueError, match="overflows float32"):
        pnoise2(1e37, 0.0, octaves=8)
    with pytest.raises(ValueError, match="real numbers"):
        pnoise2("a", 0.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n=-1), r"n must be >= 0"),
        (dict(height=0), r"height must be >= 1"),
        (dict(scale=0.0), "scale must be a finite number > 0"),
        (dict(offsets=np.zeros((3, 3))), r"offsets must be a real array of shape \(2, 2\)"),
        (dict(offsets=[[0, 0], [np.inf, 0]]), "offsets must be finite"),
        (dict(bases=[0, 128]), r"bases must be in 0\.\.127"),
        (dict(bases=[0.0, 1.0]), r"bases must be an integer array of shape \(2,\)"),
        (dict(dtype=np.int32), "dtype must be float32 or float64"),
        (dict(octaves=0), r"octaves must be in 1\.\.64"),
        (dict(repeat=0.5), "repeatx must be a finite number >= 1"),
        (dict(scale=1e-300), "must be finite"),
    ],
)
def test_perlin_fields_rejects_bad_arguments(kwargs, match):
    args = dict(n=2, height=4, width=4, scale=8.0)
    args.update(kwargs)
    n, h, w = args.pop("n"), args.pop("height"), args.pop("width")
    with pytest.raises(ValueError, match=match):
        perlin_fields(n, h, w, **args)


def test_error_messages_are_one_line():
    for call in (lambda: pnoise2(0, 0, base=500), lambda: perlin_fields(1, 2, 2, scale=-1)):
        with pytest.raises(ValueError) as err:
            call()
        assert "\n" not in str(err.value)


def test_minmax_scale_fields():
    rng = np.random.default_rng(0)
    fields = perlin_fields(4, 16, 16, scale=5.0, octaves=2, offsets=rng.uniform(0, 99, (4, 2)))
    fields[2] = 0.25  # a constant field
    before = fields.copy()
    scaled = minmax_scale_fields(fields)
    assert np.array_equal(fields, before)  # input untouched
    assert scaled.shape == fields.shape and scaled.dtype == np.float32
    assert not np.isnan(scaled).any()
    assert np.all(scaled[2] == 0.0)
    for k in (0, 1, 3):
        assert scaled[k].min() == 0.0 and scaled[k].max() == 1.0
        f = fields[k].astype(np.float64)
        np.testing.assert_allclose(scaled[k], (f - f.min()) / (f.max() - f.min()), atol=1e-6)
    batch = minmax_scale_fields(np.stack([fields, fields]), dtype=np.float64)  # (..., H, W)
    assert batch.shape == (2, 4, 16, 16) and batch.dtype == np.float64
    assert np.all((batch >= 0) & (batch <= 1))
    assert minmax_scale_fields(np.zeros((0, 3, 3))).shape == (0, 3, 3)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        minmax_scale_fields(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        minmax_scale_fields(np.full((1, 2, 2), np.nan))


def test_module_does_not_import_torch():
    code = (
        "import sys; import coordconv_data.generate.perlin as p; "
        "p.perlin_fields(1, 4, 4, scale=2.0); "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------------------------
# the patch path: whole-pixel offsets, power-of-two cells


def reference_fields(h, w, scale, octaves, persistence, lacunarity, rep, offsets, bases):
    """perlin_fields' definition, one noise.pnoise2 call per pixel."""
    return np.array(
        [[[noise.pnoise2((j + ox) / scale, (i + oy) / scale, octaves, persistence, lacunarity, rep, rep, int(b))
           for j in range(w)] for i in range(h)] for (ox, oy), b in zip(offsets, bases)],
        dtype=np.float32,
    )


def plan_for(octaves, persistence, lacunarity, rep, scale, offsets, h, w):
    schedule = perlin._octave_schedule(octaves, persistence, lacunarity, rep, rep)
    return perlin._patch_plan(schedule, scale, np.asarray(offsets, dtype=np.float64), h, w)


def general_path(monkeypatch, *args, **kwargs):
    """perlin_fields with the patch path switched off (no cell is small enough for it)."""
    with monkeypatch.context() as m:
        m.setattr(perlin, "_PATCH_MAX", 0)
        return perlin_fields(*args, **kwargs)


def assert_bits(got, want):
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0.0))
    assert diff == 0.0
    if X86:
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def whole_offsets(rng, n, scale, h, w, rep=1024):
    """Whole-pixel offsets: anywhere in the period, large ones, and ones whose field crosses the
    period seam (pixel repeat * scale) or starts right on it or just before the exactness limit."""
    period = int(rep * scale)
    seam = [period - w // 2, period - h // 2]
    near_limit = perlin._PATCH_COORD_LIMIT - max(h, w) - 1
    fixed = [seam, [period, 3 * period - 1], [near_limit, near_limit - 37], [0, 0], [5 * period + 3, 1]]
    rand = rng.integers(0, 4 * period, (max(0, n - len(fixed)), 2))
    return np.concatenate([np.array(fixed), rand])[:n].astype(np.float64)


@pytest.mark.parametrize(
    "octaves,persistence,scale,lacunarity",
    [
        (1, 0.5, 2.0, 2.0),
        (1, 0.5, 32.0, 2.0),
        (1, 0.5, 1.0, 2.0),  # one-pixel cells: every pixel a lattice point, signed zeros kept
        (2, 0.5, 32.0, 2.0),
        (3, 0.25, 16.0, 2.0),
        (4, 0.8, 64.0, 2.0),
        (5, 0.5, 8.0, 2.0),  # octaves 4, 5: cells of 1 and 1/2 px, no-ops
        (6, 0.5, 32.0, 2.0),  # Lanes' default at 128 px
        (7, 1.0, 4.0, 2.0),
        (8, 0.6, 64.0, 2.0),
        (8, 0.5, 16.0, 2.0),
        (3, 0.5, 16.0, 4.0),  # cells 16, 4, 1
        (3, 0.5, 8.0, 1.0),  # every octave the same cell
        (3, 0.5, 4.0, 0.5),  # cells growing: 4, 8, 16
        (4, 0.0, 16.0, 2.0),  # persistence 0: later octaves add +-0 * 0
        (3, 0.5, 1.0, 2.0),  # every octave a no-op: +0.0 everywhere
    ],
)
def test_patch_path_bit_identical_to_reference(monkeypatch, octaves, persistence, scale, lacunarity):
    rng = np.random.default_rng(octaves * 1000 + int(scale * 10))
    n, h, w = 6, 11, 19
    offsets = whole_offsets(rng, n, scale, h, w)
    bases = np.array([0, 1, 1, 0, 1, 0])
    assert plan_for(octaves, persistence, lacunarity, 1024, scale, offsets, h, w) is not None
    kw = dict(scale=scale, octaves=octaves, persistence=persistence, lacunarity=lacunarity, offsets=offsets,
              bases=bases)
    got = perlin_fields(n, h, w, **kw)
    assert_bits(got, reference_fields(h, w, scale, octaves, persistence, lacunarity, 1024, offsets, bases))
    assert_bits(got, general_path(monkeypatch, n, h, w, **kw))


@pytest.mark.parametrize("rep", [1, 3, 16, 1000])
def test_patch_path_small_and_odd_periods(rep):
    """Periods of a few cells, so that fields wrap several times; lacunarity 2 doubles the period in
    each octave's lattice units (a whole number every time)."""
    rng = np.random.default_rng(rep)
    n, h, w, scale, octaves = 4, 13, 17, 4.0, 3
    offsets = rng.integers(0, 8 * rep * 4, (n, 2)).astype(np.float64)
    bases = rng.integers(0, 2, n)
    assert plan_for(octaves, 0.5, 2.0, rep, scale, offsets, h, w) is not None
    got = perlin_fields(n, h, w, scale=scale, octaves=octaves, offsets=offsets, bases=bases, repeat=rep)
    assert_bits(got, reference_fields(h, w, scale, octaves, 0.5, 2.0, rep, offsets, bases))


def test_patch_path_bases_past_the_table(monkeypatch):
    """Bases from 2 up (the reference reads past its table; the port reproduces those bytes)."""
    n, h, w, scale = 4, 16, 16, 4.0
    offsets = np.array([[0, 0], [1000, 4000], [77, 3], [4095, 4095]], dtype=np.float64)
    bases = np.array([2, 17, 64, 127])
    got = perlin_fields(n, h, w, scale=scale, octaves=3, offsets=offsets, bases=bases)
    assert_bits(got, reference_fields(h, w, scale, 3, 0.5, 2.0, 1024, offsets, bases))


def test_patch_path_groups_and_buffers(monkeypatch):
    """Many fields in several groups (the last one short), against the general path."""
    monkeypatch.setattr(perlin, "_MOSAIC_BYTES", 3 * 48 * 48 * 4)  # three fields of 48 x 48 px mosaics
    rng = np.random.default_rng(5)
    n, h, w, scale = 11, 23, 29, 16.0
    offsets = rng.integers(0, 1024 * 16, (n, 2)).astype(np.float64)
    bases = rng.integers(0, 2, n)
    for octaves in (1, 6):
        kw = dict(scale=scale, octaves=octaves, persistence=0.7, offsets=offsets, bases=bases)
        got = perlin_fields(n, h, w, **kw)
        assert_bits(got, general_path(monkeypatch, n, h, w, **kw))
        assert_bits(got[:2], reference_fields(h, w, scale, octaves, 0.7, 2.0, 1024, offsets[:2], bases[:2]))


def test_patch_path_lazy_tables(monkeypatch):
    """Tables above _PATCH_EAGER are filled as patterns occur: a second call with new patterns."""
    monkeypatch.setattr(perlin, "_PATCHES", {})
    n, h, w, scale = 2, 9, 70, 64.0
    first = perlin_fields(1, h, w, scale=scale, octaves=2)
    _, done = perlin._PATCHES[64]
    assert 0 < done.sum() < 8**4
    offsets = np.array([[64 * 301, 64 * 77], [64 * 900 + 5, 3]], dtype=np.float64)
    got = perlin_fields(n, h, w, scale=scale, octaves=2, offsets=offsets, bases=[0, 1])
    assert_bits(got, reference_fields(h, w, scale, 2, 0.5, 2.0, 1024, offsets, [0, 1]))
    assert_bits(first, reference_fields(h, w, scale, 2, 0.5, 2.0, 1024, [[0, 0]], [0]))


@pytest.mark.parametrize(
    "change",
    [
        dict(scale=24.0),  # a cell that is not a power of two
        dict(scale=0.5),  # cells under one pixel from the first octave on
        dict(scale=128.0),  # a first-octave cell above _PATCH_MAX
        dict(lacunarity=3.0),  # cells 8, 8/3, ...
        dict(lacunarity=2.0000002),  # float32(lacunarity) just above 2
        dict(lacunarity=0.25),  # cells growing past _PATCH_MAX (8, 32, 128)
        dict(offset_shift=0.5),  # between pixels
        dict(offset_shift=-8.0),  # some offsets negative
        dict(offset_at_limit=True),  # pixel coordinates reach _PATCH_COORD_LIMIT
        dict(rep=1024.5),  # a period that is not a whole number of cells
        dict(rep=3.0, lacunarity=0.5),  # periods 3, 1.5, 0.75: not whole from the second octave
    ],
)
def test_patch_path_falls_back_just_outside_its_conditions(change):
    change = dict(change)
    scale = change.pop("scale", 8.0)
    lacunarity = change.pop("lacunarity", 2.0)
    rep = change.pop("rep", 1024.0)
    n, h, w, octaves = 3, 7, 12, 3
    offsets = np.array([[0, 0], [8 * 1023, 35], [16, 4000]], dtype=np.float64) + change.pop("offset_shift", 0.0)
    if change.pop("offset_at_limit", False):
        offsets[1] = perlin._PATCH_COORD_LIMIT - max(h, w)
        inside = offsets.copy()
        inside[1] -= 1  # one pixel less: patchable
        assert plan_for(octaves, 0.5, lacunarity, rep, scale, inside, h, w) is not None
    assert not change
    bases = np.array([0, 1, 0])
    assert plan_for(octaves, 0.5, lacunarity, rep, scale, offsets, h, w) is None
    got = perlin_fields(n, h, w, scale=scale, octaves=octaves, lacunarity=lacunarity, offsets=offsets,
                        bases=bases, repeat=rep)
    assert_bits(got, reference_fields(h, w, scale, octaves, 0.5, lacunarity, rep, offsets, bases))


def test_patch_path_total_starts_at_plus_zero():
    """Where every octave is -0.0 (lattice points of all octaves, rare) the reference's total is
    0.0f + -0.0 + -0.0 = +0.0: the patch path must not start its sum from the first term."""
    scale, base = 4.0, 0
    g = np.arange(256, dtype=np.float32)
    xx, yy = np.meshgrid(g, g)
    first = pnoise2(xx, yy, base=base)
    second = pnoise2(2 * xx, 2 * yy, repeatx=2048, repeaty=2048, base=base)
    hits = np.argwhere(np.signbit(first) & np.signbit(second))[:3]  # (Y, X) lattice points of octave 1
    assert len(hits) == 3
    offsets = hits[:, ::-1].astype(np.float64) * scale  # pixel (x, y) of each point: the field's corner
    for ox, oy in offsets:
        assert np.signbit(noise.pnoise2(ox / scale, oy / scale, 1, 0.5, 2.0, 1024, 1024, base))
        assert np.signbit(noise.pnoise2(2 * ox / scale, 2 * oy / scale, 1, 0.5, 2.0, 2048, 2048, base))
    want = reference_fields(3, 3, scale, 2, 0.5, 2.0, 1024, offsets, [base] * 3)
    assert np.all(want[:, 0, 0] == 0) and not np.any(np.signbit(want[:, 0, 0]))
    assert_bits(perlin_fields(3, 3, 3, scale=scale, octaves=2, offsets=offsets), want)


def test_patch_plan_cells_and_no_op_octaves():
    offsets = np.zeros((1, 2))
    assert plan_for(6, 0.5, 2.0, 1024, 32.0, offsets, 128, 128) == [
        (32, 1024, 1024), (16, 2048, 2048), (8, 4096, 4096), (4, 8192, 8192), (2, 16384, 16384), None,
    ]
    assert plan_for(1, 0.5, 2.0, 1024, 1.0, offsets, 4, 4) == [(1, 1024, 1024)]  # one octave: its zeros' signs
    assert plan_for(3, 0.5, 2.0, 1024, 1.0, offsets, 4, 4) == [None, None, None]


def test_lanes_default_noise_takes_the_patch_path():
    """What Lanes draws: whole-pixel offsets over the period, scale size / 4, lacunarity 2."""
    from coordconv_data.generate import lanes

    rng = np.random.default_rng(0)
    for size in (64, 128, 256):
        scale = size / 4
        drawn = lanes.sample_noise(rng, 50, scale)["noise_offsets"].reshape(-1, 2) * scale
        for octaves in (1, 4, 6):
            assert plan_for(octaves, 0.5, 2.0, 1024, scale, drawn, size, size) is not None
