"""The ``coorddata`` command line: parse, validate, call the library, report.

Only click is imported at module level so that ``coorddata --help`` stays fast and never imports
torch; each command imports what it needs when it runs.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# -- shared options ----------------------------------------------------------------------------------

def force_option(fn: Callable) -> Callable:
    return click.option("--force", is_flag=True, help="Replace existing output files.")(fn)


def quiet_option(fn: Callable) -> Callable:
    return click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")(fn)


def layout_option(fn: Callable) -> Callable:
    return click.option(
        "--layout",
        type=click.Choice(["native", "original"]),
        default="native",
        show_default=True,
        help="native: this toolkit's schema; original: the paper generator's keys and dtypes.",
    )(fn)


def store_errors(fn: Callable) -> Callable:
    """Turn the library's one-line domain errors into click errors (exit 1, no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .store import StoreError

        try:
            return fn(*args, **kwargs)
        except StoreError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # a full disk, a vanished folder: the run failed, the user needs one line
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(f"{where}{e.strerror or e}") from None

    return wrapper


def _check_outputs(paths: list[Path], force: bool) -> None:
    """Refuse before any work starts, so that no run writes some outputs and then stops."""
    from .store import StoreError, check_target

    for p in paths:
        try:
            check_target(p, force)
        except StoreError as e:
            raise click.BadParameter(str(e), param_hint="'--out'") from None


class progress:
    """A progress bar on stderr for long work; silent with --quiet or when stderr is no terminal.

    Use as ``with progress(total, "writing", quiet) as advance: ... advance(k)``; hand ``advance``
    to library functions that take a ``progress`` callback.
    """

    def __init__(self, total: int, label: str, quiet: bool) -> None:
        self.bar = None
        if not quiet and sys.stderr.isatty():
            self.bar = click.progressbar(length=total, label=label, file=sys.stderr)

    def __enter__(self) -> Callable[[int], None]:
        if self.bar is None:
            return lambda k: None
        bar = self.bar.__enter__()
        return bar.update

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _human_bytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


# -- the group ---------------------------------------------------------------------------------------

@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="coorddata")
def main() -> None:
    """Datasets, CoordConv models and training for studying where CNNs fail at position.

    Generate the CoordConv paper's datasets into HDF5, look at them, and (soon) train the paper's
    models on them. Run `coorddata COMMAND --help` for each command's options.
    """


@main.command("not-so-clevr")
@click.option(
    "--split",
    type=click.Choice(["uniform", "quadrant", "both"]),
    default="both",
    show_default=True,
    help="uniform: a random quarter held out; quadrant: the bottom-right quadrant held out.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=True, file_okay=True, path_type=Path),
    default=None,
    help="Output file for one split, or folder for both. [default: not_so_clevr_<split>.h5 here]",
)
@layout_option
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=20202,
    show_default=True,
    help="Seed of the uniform split's draw (the paper's is 20202). The quadrant split has none.",
)
@force_option
@quiet_option
@store_errors
def not_so_clevr(split: str, out: Path | None, layout: str, seed: int, force: bool, quiet: bool) -> None:
    """Not-so-Clevr: a 9x9 square at each of 3136 positions on a 64x64 canvas.

    Exactly the paper's data: the same samples, splits (uniform 2368/768, quadrant 2407/729) and
    order. `--layout original` writes the paper generator's file key for key (train_*/val_*
    float64 arrays), so code written for rectangle_4_uniform.h5 runs unchanged.
    """
    from .generate.not_so_clevr import NotSoClevrSpec, write_file

    splits = ["uniform", "quadrant"] if split == "both" else [split]
    if split == "both":
        folder = out if out is not None else Path(".")
        if folder.suffix in {".h5", ".hdf5"} and not folder.is_dir():
            raise click.BadParameter(f"{folder} looks like a file, but --split both writes two files: give a folder",
                                     param_hint="'--out'")
        if not folder.is_dir():
            raise click.BadParameter(f"folder {folder} does not exist", param_hint="'--out'")
        targets = [folder / f"not_so_clevr_{s}.h5" for s in splits]
    else:
        target = out if out is not None else Path(f"not_so_clevr_{split}.h5")
        if target.is_dir():
            target = target / f"not_so_clevr_{split}.h5"
        targets = [target]
    _check_outputs(targets, force)
    for name, target in zip(splits, targets):
        counts = write_file(NotSoClevrSpec(split=name, seed=seed), target, layout=layout, force=force)
        if not quiet:
            click.echo(f"wrote {target}: {name} split, train {counts['train']}, test {counts['test']} "
                       f"({layout} layout, {_human_bytes(target.stat().st_size)})")


def workers_option(fn: Callable) -> Callable:
    """``--workers``, defaulting to every CPU: the output does not depend on it, only the speed."""
    return click.option(
        "--workers",
        type=click.IntRange(1, 256),
        default=lambda: os.cpu_count() or 1,
        show_default="number of CPUs",
        help="Worker processes; the file is identical for every count.",
    )(fn)


def _spec_or_usage_error(make: Callable[[], Any]) -> Any:
    """Build a generator spec; a value the options' types allowed but the spec rejects is a usage error."""
    try:
        return make()
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@main.command()
@click.option("--n", "n", type=click.IntRange(0), default=5000, show_default=True, help="Training images.")
@click.option("--test-n", type=click.IntRange(0), default=None, help="Test images. [default: n/2]")
@click.option("--size", type=click.IntRange(32, 2048), default=128, show_default=True, help="Image side in pixels.")
@click.option("--circles", type=click.IntRange(1, 64), default=3, show_default=True, help="Circles per image.")
@click.option("--intensity", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Brightness of the noise background (the circles are full colour).")
@click.option("--scale", type=click.FloatRange(0, min_open=True), default=None,
              help="Noise lattice cell in pixels; larger is blotchier. [default: size/4, as the study]")
@click.option("--octaves", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Noise octaves (the study used one).")
@click.option("--persistence", type=click.FloatRange(0, min_open=True), default=0.5, show_default=True,
              help="Amplitude factor from one octave to the next.")
@click.option("--lacunarity", type=click.FloatRange(0, min_open=True), default=2.0, show_default=True,
              help="Frequency factor from one octave to the next.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Random seed.")
@workers_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("lanes.h5"),
              show_default=True, help="Output file.")
@force_option
@quiet_option
@store_errors
def lanes(n: int, test_n: int | None, size: int, circles: int, intensity: float, scale: float | None,
          octaves: int, persistence: float, lacunarity: float, seed: int, workers: int, out: Path,
          force: bool, quiet: bool) -> None:
    """Lanes: yellow and red circles on Perlin noise, with a 4-class mask.

    The custom-conv2d study's segmentation data: a yellow circle is class 1 right of the image's
    centre and 2 left of it; a red circle is class 3 in the bottom half and background (0) in the
    top half. The class depends on where a circle is, which plain convolutions cannot see.
    """
    from .generate.lanes import LanesSpec, write_file

    spec = _spec_or_usage_error(lambda: LanesSpec(
        n=n, test_n=n // 2 if test_n is None else test_n, size=size, circles=circles, intensity=intensity,
        scale=scale, octaves=octaves, persistence=persistence, lacunarity=lacunarity, seed=seed))
    _check_outputs([out], force)
    with progress(spec.n + spec.test_n, "lanes", quiet) as advance:
        counts = write_file(spec, out, workers=workers, force=force, progress=advance)
    if not quiet:
        click.echo(f"wrote {out}: train {counts['train']}, test {counts['test']} "
                   f"({_human_bytes(out.stat().st_size)})")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@store_errors
def info(file: Path, as_json: bool) -> None:
    """Describe a data FILE: kind, parameters, splits, arrays and statistics."""
    from .info import describe, format_text

    d = describe(file)
    click.echo(json.dumps(d, indent=2) if as_json else format_text(d))


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("preview.png"),
              show_default=True, help="PNG file to write.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="Split to draw samples from.")
@click.option("--n", "n", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Number of samples (the split's first ones).")
@force_option
@quiet_option
@store_errors
def preview(file: Path, out: Path, split: str, n: int, force: bool, quiet: bool) -> None:
    """Draw samples of a data FILE as an enlarged PNG grid with their targets marked."""
    from .viz import preview as draw

    count = draw(file, out, split=split, n=n, force=force)
    if not quiet:
        click.echo(f"wrote {out}: {count} {split} samples of {file}")


@main.command("sort-of-clevr")
@click.option("--n", "n", type=click.IntRange(min=1), default=50000, show_default=True,
              help="Total number of images (train and test together).")
@click.option("--test-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of the images in the test split (0 <= f < 1).")
@click.option("--objects", type=click.IntRange(1, 6), default=2, show_default=True,
              help="Objects per image, 1 to 6, of distinct colours: blue, red, green, orange, gray, yellow.")
@click.option("--size", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Canvas width and height in pixels.")
@click.option("--object-size", type=click.IntRange(min=1), default=None,
              help="Square side and circle diameter, odd. [default: 21 at size 64, scaled with --size]")
@click.option("--min-distance", type=click.IntRange(min=0), default=None,
              help="Least distance between object centres in pixels. [default: object size - 1]")
@click.option("--background", default="white", show_default=True,
              help="Background colour: white, black, or R,G,B (0..255 each).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Random seed; the same seed and options give the same file.")
@workers_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("sort_of_clevr.h5"),
              show_default=True, help="Output HDF5 file.")
@layout_option
@force_option
@quiet_option
@store_errors
def sort_of_clevr(n: int, test_fraction: float, objects: int, size: int, object_size: int | None,
                  min_distance: int | None, background: str, seed: int, workers: int, out: Path, layout: str,
                  force: bool, quiet: bool) -> None:
    """Sort-of-Clevr: coloured squares and circles at random places on a plain canvas.

    By default the CoordConv paper's data: 64x64 white images, each with a blue and a red object, a
    21x21 square or a radius-10 circle, centres in 10..53 at least 20 px apart. Every image's
    objects (colour, shape, centre) are stored beside it. `--layout original` writes what the
    paper's GAN code loads: `train_x`, all images as floats in [-1, 1].

    Data like the relational-networks original's: --size 75 --objects 6 --object-size 11.
    """
    from .generate.sort_of_clevr import PlacementError, SortOfClevrSpec, parse_color, write_file

    try:
        rgb = parse_color(background)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--background'") from None
    spec = _spec_or_usage_error(lambda: SortOfClevrSpec(
        n=n, test_fraction=test_fraction, objects=objects, size=size, object_size=object_size,
        min_distance=min_distance, background=rgb, seed=seed))
    _check_outputs([out], force)
    try:
        with progress(spec.n, "sort-of-clevr", quiet) as advance:
            counts = write_file(spec, out, layout=layout, workers=workers, force=force, progress=advance)
    except PlacementError as e:
        raise click.ClickException(str(e)) from None
    if not quiet:
        splits = (f"train {counts['train']}, test {counts['test']}" if layout == "native" else
                  f"all in train_x: train {counts['train']} then test {counts['test']}")
        click.echo(f"wrote {out}: {spec.n} images ({splits}), {spec.objects} objects on {spec.size}x{spec.size} "
                   f"({layout} layout, {_human_bytes(out.stat().st_size)})")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
