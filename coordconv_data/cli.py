"""The ``coorddata`` command line: parse, validate, call the library, report.

Only click is imported at module level so that ``coorddata --help`` stays fast and never imports
torch; each command imports what it needs when it runs.

Errors are mapped in one place (:func:`domain_errors`): a library
:class:`~coordconv_data.errors.InvalidParameter` becomes a usage error naming the option whose
parameter name is its field (exit 2); any other library error, a full disk or another ``OSError`` is
one line and exit 1. Interrupts are handled by the group for every command: Ctrl-C exits 130,
SIGTERM 143 and SIGHUP 129, after the command's partial files are removed, within 0.1 s of the signal
even when the main thread is inside a long C call (:mod:`.deadline`).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from . import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
from .generate import SEED_MAX  # noqa: E402  (what every generator's random source takes; imports no numpy)
from .train.options import BUDGETS, SEED_MAX as TRAIN_SEED_MAX  # noqa: E402  (no torch)


# -- interrupts --------------------------------------------------------------------------------------

class Interrupted(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread like KeyboardInterrupt is for SIGINT, so that
    every ``with``/``finally`` on the way out (partial files, worker pools) runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_pending: list[int] = []  # the signal that stopped the command, once one has arrived
_deadlines: list[Any] = []  # the running command's SignalDeadline
_ending = threading.Lock()  # held by whichever ends the process after a signal: the main thread or the deadline
STOP_GRACE = 0.1  # seconds a command has after a signal to end by itself before the deadline ends it


def _interrupt(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Interrupted(signum)


def _raise_interrupted(signum: int, frame: Any) -> None:
    # The first signal decides; further ones would interrupt the clean-up itself.
    if _pending:
        return
    _pending.append(signum)
    raise _interrupt(signum)


def raise_if_interrupted() -> None:
    """Raise again a signal's exception that was swallowed where it first landed (a signal handler
    raising inside a weakref callback or a ``__del__`` only prints "Exception ignored"). Called
    between blocks of work (the progress callback), so a signal always stops the command."""
    if _pending:
        raise _interrupt(_pending[0])


def _signal_line(signum: int) -> str:
    return "Aborted!" if signum == signal.SIGINT else f"Stopped by {signal.Signals(signum).name}."


def _end_at_deadline(signum: int) -> None:
    """The deadline's end (in its thread): the main thread is still busy (a long C call) or its clean-up
    is; remove this process's temporary files, say why, and end with the signal's status."""
    if not _ending.acquire(blocking=False):
        return  # the main thread is ending the process itself
    writer = sys.modules.get(f"{__package__}.writer")  # not imported: no file was being written
    if writer is not None:
        writer.remove_own_temporaries()
    try:
        os.write(2, (_signal_line(signum) + "\n").encode())
    finally:
        os._exit(128 + signum)


@contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from .deadline import SignalDeadline

    handled = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    previous_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        # A signal's exception swallowed where it landed: raise_if_interrupted raises it again.
        if not isinstance(unraisable.exc_value, (Interrupted, KeyboardInterrupt)):
            previous_hook(unraisable)

    _pending.clear()
    sys.unraisablehook = hook
    for sig in handled:
        if previous[sig] is not signal.SIG_IGN:
            signal.signal(sig, _raise_interrupted)
    try:
        with SignalDeadline(STOP_GRACE, _end_at_deadline, handled) as deadline:
            _deadlines[:] = [deadline]
            yield
    finally:
        _deadlines.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = previous_hook


def allow_stop_time(seconds: float) -> None:
    """Give the running command ``seconds`` (instead of :data:`STOP_GRACE`) to clean up after a signal:
    for one whose clean-up is itself work to wait for (a cluster's tasks cancelled, its workers stopped)."""
    for deadline in _deadlines:
        deadline.grace = max(deadline.grace, seconds)


def _leave_now(code: int) -> None:
    """After a signal, once the command's clean-up has run (every ``with``/``finally`` on the way out:
    partial files removed, workers stopped), end the process without the interpreter's teardown, which
    took up to a second with torch and large arrays loaded: a signal stops a command at once. Only for
    a signal that arrived (a KeyboardInterrupt raised in code, as under a test runner, returns and
    lets go of :data:`_ending`)."""
    if _pending:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _ending.release()


class CoordGroup(click.Group):
    """The command group: runs every command with SIGTERM/SIGHUP handled like Ctrl-C."""

    def invoke(self, ctx: click.Context) -> Any:
        with _signals_as_exceptions():
            try:
                result = super().invoke(ctx)
                raise_if_interrupted()  # one that landed where it could not stop the work
                return result
            except (KeyboardInterrupt, Interrupted) as e:
                signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
                _ending.acquire()  # the deadline's thread, if it is ending the process, ends this one too
                click.echo(_signal_line(signum), err=True)
                _leave_now(128 + signum)
                ctx.exit(128 + signum)
            except BrokenPipeError:
                # The reader of our output went away (`coorddata models | head`): what it wanted it has.
                # End quietly, as git and ls do; stdout goes to /dev/null so that the interpreter's
                # last flush does not complain.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
                ctx.exit(0)


# -- shared options ----------------------------------------------------------------------------------

class OutPath(click.Path):
    """A path option that names something to write: an empty value names nothing and is refused
    (``Path("")`` would quietly mean the current folder)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value == "":
            self.fail("must not be empty; give a file, or a folder ending in /", param, ctx)
        # click refuses only a regular file where a folder is wanted; a FIFO or a device would pass.
        if not self.file_okay and os.path.exists(value) and not os.path.isdir(value):
            self.fail(f"{value} exists and is not a folder; give a folder (new or existing)", param, ctx)
        return super().convert(value, param, ctx)


def out_file(out: str | None, default_name: str) -> Path:
    """The file ``--out`` names: ``default_name`` inside it when it ends with / or is a folder."""
    from .writer import output_file

    return output_file(out, default_name)


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


def seed_option(default: int, help: str) -> Callable[[Callable], Callable]:
    return click.option("--seed", type=click.IntRange(0, SEED_MAX), default=default, show_default=True, help=help)


def _param(ctx: click.Context, name: str | None) -> click.Parameter | None:
    return next((p for p in ctx.command.params if p.name == name), None) if name else None


def option_name(ctx: click.Context, name: str) -> str:
    """The flag of the library's parameter ``name`` (``batch_size`` -> ``--batch-size``, ``size`` ->
    ``--image-size`` in ``train``): this command's option of that name, else the usual spelling."""
    param = _param(ctx, name)
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return "--" + name.replace("_", "-")


def domain_errors(fn: Callable) -> Callable:
    """The library's one-line errors as click errors, mapped in this one place.

    :class:`~coordconv_data.errors.InvalidParameter` names a field; the option of this command with
    that name becomes the hint (exit 2, a usage error). Any other library error (a file of the wrong
    kind, a malformed file, a full disk: each one line naming the file) and an ``OSError`` are a
    runtime failure: one line, exit 1, no traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import CoordDataError, InvalidParameter

        try:
            return fn(*args, **kwargs)
        except InvalidParameter as e:
            ctx = click.get_current_context()
            param = _param(ctx, e.field)
            text = e.render(functools.partial(option_name, ctx))
            if param is None:
                raise click.UsageError(text) from None
            raise click.BadParameter(text, ctx=ctx, param=param) from None
        except CoordDataError as e:
            text = e.render(functools.partial(option_name, click.get_current_context()))
            if getattr(e, "hdf5_failed", False):
                # HDF5 met the full disk itself (the partial file is already removed): its objects of
                # that file may be inconsistent, and freeing them can crash the interpreter. End now.
                click.echo(f"Error: {text}", err=True)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(1)
            raise click.ClickException(text) from None
        except BrokenPipeError:
            raise  # the reader went away: the group ends quietly
        except MemoryError:
            raise click.ClickException("out of memory (ask for less: a smaller size, batch or model)") from None
        except OSError as e:
            from .writer import is_disk_full

            where = f"{e.filename}: " if e.filename else ""
            if is_disk_full(e):
                raise click.ClickException(f"{where}disk full (no space left on device)") from None
            text = e.strerror or (str(e).splitlines()[0] if str(e) else type(e).__name__)
            raise click.ClickException(f"{where}{text}") from None

    return wrapper


@contextmanager
def outputs(paths: list[Path], force: bool) -> Iterator[None]:
    """Make the outputs' missing folders and refuse (before any work) a target that cannot be
    written; folders made here are removed again if the command fails."""
    from .writer import OutputInUse, StoreError, check_target, prepare_folder, remove_empty_folders

    created: list[Path] = []
    try:
        for p in paths:
            created += prepare_folder(p.parent)
        for p in paths:
            check_target(p, force)
    except OutputInUse:  # not a bad name: another run is writing it now (exit 1)
        remove_empty_folders(created)
        raise
    except StoreError as e:
        remove_empty_folders(created)
        raise click.BadParameter(e.render(functools.partial(option_name, click.get_current_context())),
                                 param_hint="'--out'") from None
    try:
        yield
    except BaseException:
        remove_empty_folders(created)
        raise


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
            return lambda k: raise_if_interrupted()
        bar = self.bar.__enter__()

        def advance(k: int) -> None:
            raise_if_interrupted()
            bar.update(k)

        return advance

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _size(path: Path) -> str:
    from .writer import format_bytes

    return format_bytes(path.stat().st_size)


# -- the group ---------------------------------------------------------------------------------------

@click.group(cls=CoordGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="coorddata")
def main() -> None:
    """Datasets, CoordConv models and training for studying where CNNs fail at position.

    Generate the CoordConv paper's datasets into HDF5, look at them, and train the paper's
    models on them. Run `coorddata COMMAND --help` for each command's options.
    """


def _looks_like_folder(text: str) -> bool:
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


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
    type=OutPath(dir_okay=True, file_okay=True),
    default=None,
    help="Output file for one split, or folder (made if missing; end it with / for one split) for both. "
         "[default: not_so_clevr_<split>.h5 here]",
)
@layout_option
@seed_option(20202, "Seed of the uniform split's draw (the paper's is 20202). The quadrant split has none.")
@force_option
@quiet_option
@domain_errors
def not_so_clevr(split: str, out: str | None, layout: str, seed: int, force: bool, quiet: bool) -> None:
    """Not-so-Clevr: a 9x9 square at each of 3136 positions on a 64x64 canvas.

    Exactly the paper's data: the same samples, splits (uniform 2368/768, quadrant 2407/729) and
    order. `--layout original` writes the paper generator's file key for key (train_*/val_*
    float64 arrays), so code written for rectangle_4_uniform.h5 runs unchanged.
    """
    from .kinds import NOT_SO_CLEVR

    generator = NOT_SO_CLEVR.generator
    splits = ["uniform", "quadrant"] if split == "both" else [split]
    if split == "both":
        folder = Path(out) if out is not None else Path(".")
        if folder.suffix in {".h5", ".hdf5"} and not folder.is_dir():
            raise click.BadParameter(f"{folder} looks like a file, but --split both writes two files: give a folder",
                                     param_hint="'--out'")
        targets = [folder / f"not_so_clevr_{s}.h5" for s in splits]
    elif out is None:
        targets = [Path(f"not_so_clevr_{split}.h5")]
    else:
        targets = [Path(out) / f"not_so_clevr_{split}.h5" if _looks_like_folder(out) else Path(out)]
    specs = [generator.Spec(split=name, seed=seed) for name in splits]
    with outputs(targets, force):
        for name, spec, target in zip(splits, specs, targets):
            with progress(spec.samples, f"not-so-clevr {name}", quiet) as advance:
                counts = generator.write_file(spec, target, layout=layout, force=force, progress=advance)
            if not quiet:
                click.echo(f"wrote {target}: {name} split, train {counts['train']}, test {counts['test']} "
                           f"({layout} layout, {_size(target)})")


def workers_option(fn: Callable) -> Callable:
    """``--workers``, defaulting to every CPU: the output does not depend on it, only the speed."""
    return click.option(
        "--workers",
        type=click.IntRange(1, 256),
        default=lambda: os.cpu_count() or 1,
        show_default="number of CPUs",
        help="Worker processes; the file is identical for every count.",
    )(fn)


def beyond_one_machine(fn: Callable) -> Callable:
    """``--shard``, ``--shards`` and ``--dask``: the generators of kinds whose size can grow."""
    fn = click.option("--dask", default=None, metavar="ADDRESS",
                      help="Generate on a Dask cluster: a scheduler's address (tcp://host:8786) or local (a "
                           "LocalCluster of --workers processes here); one task per shard (--shards), each written "
                           "into <out stem>-shards/ beside --out (same path on every worker), then --out as their "
                           "merge. Needs the [cluster] extra.")(fn)
    fn = click.option("--shards", type=click.IntRange(1, 1_000_000), default=None,
                      help="With --dask: the number of shards (tasks) the dataset is cut into.")(fn)
    fn = click.option("--shard", "shard", default=None, metavar="K/N",
                      help="Write only shard K of N (K = 0..N-1): its contiguous share of each split, equal to "
                           "those samples of the whole file (for a job array: $SLURM_ARRAY_TASK_ID/"
                           "$SLURM_ARRAY_TASK_COUNT); `coorddata merge` joins the shards. "
                           "[default --out: <name>-KKKKK-of-NNNNN.h5]")(fn)
    return fn


def _generate(kind: Any, spec: Any, out: str | None, *, layout: str, workers: int, force: bool, quiet: bool,
              shard: str | None, shards: int | None, dask: str | None) -> tuple[Path, dict[str, int], str]:
    """Write ``spec``'s file as the generators do: whole, one shard of it (``shard``), or as shards on a
    Dask cluster then merged (``dask``). Returns the file, its count per split and what it is."""
    from .generate.shards import parse_shard, shard_file_name

    generator = kind.generator
    if shard is not None and (shards is not None or dask is not None):
        raise click.UsageError("--shard K/N writes one shard here; --shards N with --dask writes them all on a "
                               "cluster: give one or the other.")
    if (shards is None) != (dask is None):
        raise click.UsageError("--shards N and --dask ADDRESS go together (the shards are the cluster's tasks); "
                               "to write one shard here, use --shard K/N.")
    if shard is not None:
        part = parse_shard(shard)
        target = out_file(out, shard_file_name(kind.file_name(), part))
        total = sum(b - a for a, b in kind.split_ranges(spec.params(), part).values())
        with outputs([target], force), progress(total, f"{kind.name} shard {part}", quiet) as advance:
            counts = generator.write_file(spec, target, layout=layout, workers=workers, force=force, progress=advance,
                                          shard=part)
        return target, counts, f"shard {part.index} of {part.count}"
    target = out_file(out, kind.file_name())
    if dask is not None:
        from .cluster import generate_on_cluster

        assert shards is not None
        if layout != "native":
            raise click.BadParameter("shards are written and merged in the native layout only", param_hint="'--layout'")
        allow_stop_time(30.0)  # cancelling the tasks and stopping a local cluster's workers takes seconds
        log = None if quiet else (lambda line: click.echo(line, err=True))
        with outputs([target], force), progress(shards, f"{kind.name} shards", quiet) as advance:
            result = generate_on_cluster(kind, spec, target, shards=shards, address=dask, workers=workers,
                                         force=force, progress=advance, log=log)
        return target, result.lengths, f"merged from {result.shards} shards in {result.folder}/"
    with outputs([target], force), progress(sum(generator.split_sizes(spec).values()), kind.name, quiet) as advance:
        counts = generator.write_file(spec, target, layout=layout, workers=workers, force=force, progress=advance)
    return target, counts, ""


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
@seed_option(0, "Random seed; the same seed and options give the same file.")
@workers_option
@click.option("--out", type=OutPath(), default=None,
              help="Output file, or folder (made if missing; end it with /) for lanes.h5. [default: lanes.h5]")
@beyond_one_machine
@force_option
@quiet_option
@domain_errors
def lanes(n: int, test_n: int | None, size: int, circles: int, intensity: float, scale: float | None,
          octaves: int, persistence: float, lacunarity: float, seed: int, workers: int, out: str | None,
          shard: str | None, shards: int | None, dask: str | None, force: bool, quiet: bool) -> None:
    """Lanes: yellow and red circles on Perlin noise, with a 4-class mask.

    The custom-conv2d study's segmentation data: a yellow circle is class 1 right of the image's
    centre and 2 left of it; a red circle is class 3 in the bottom half and background (0) in the
    top half. The class depends on where a circle is, which plain convolutions cannot see.
    """
    from .kinds import LANES

    generator = LANES.generator
    spec = generator.Spec(n=n, test_n=n // 2 if test_n is None else test_n, size=size, circles=circles,
                     intensity=intensity, scale=scale, octaves=octaves, persistence=persistence,
                     lacunarity=lacunarity, seed=seed)
    out, counts, what = _generate(LANES, spec, out, layout="native", workers=workers, force=force, quiet=quiet,
                                  shard=shard, shards=shards, dask=dask)
    if not quiet:
        click.echo(f"wrote {out}: {what + ', ' if what else ''}train {counts['train']}, test {counts['test']} "
                   f"({_size(out)})")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@domain_errors
def info(file: Path, as_json: bool) -> None:
    """Describe a data FILE: kind, parameters, splits, arrays and statistics."""
    from .info import describe, format_text

    d = describe(file)
    click.echo(json.dumps(d, indent=2) if as_json else format_text(d))


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--out", type=OutPath(), default=None,
              help="Picture to write: .png, .jpg, .bmp, .tif or .webp, as its extension says; or a folder (made if "
                   "missing; end it with /) for preview.png. [default: preview.png]")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="Split to draw samples from.")
@click.option("--n", "n", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Number of samples (the split's first ones).")
@force_option
@quiet_option
@domain_errors
def preview(file: Path, out: str | None, split: str, n: int, force: bool, quiet: bool) -> None:
    """Draw samples of a data FILE as an enlarged grid with their targets marked (Lanes: with a legend)."""
    from .viz import check_image_path
    from .viz import preview as draw

    out = out_file(out, "preview.png")
    check_image_path(out)
    with outputs([out], force):
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
@seed_option(0, "Random seed; the same seed and options give the same file.")
@workers_option
@click.option("--out", type=OutPath(), default=None,
              help="Output HDF5 file, or folder (made if missing; end it with /) for sort_of_clevr.h5. "
                   "[default: sort_of_clevr.h5]")
@layout_option
@beyond_one_machine
@force_option
@quiet_option
@domain_errors
def sort_of_clevr(n: int, test_fraction: float, objects: int, size: int, object_size: int | None,
                  min_distance: int | None, background: str, seed: int, workers: int, out: str | None, layout: str,
                  shard: str | None, shards: int | None, dask: str | None, force: bool, quiet: bool) -> None:
    """Sort-of-Clevr: coloured squares and circles at random places on a plain canvas.

    By default the CoordConv paper's data: 64x64 white images, each with a blue and a red object, a
    21x21 square or a radius-10 circle, centres in 10..53 at least 20 px apart. Every image's
    objects (colour, shape, centre) are stored beside it. `--layout original` writes what the
    paper's GAN code loads: `train_x`, all images as floats in [-1, 1].

    Data like the relational-networks original's: --size 75 --objects 6 --object-size 11.
    """
    from .kinds import SORT_OF_CLEVR

    generator = SORT_OF_CLEVR.generator
    spec = generator.Spec(n=n, test_fraction=test_fraction, objects=objects, size=size, object_size=object_size,
                          min_distance=min_distance, background=generator.parse_color(background), seed=seed)
    out, counts, what = _generate(SORT_OF_CLEVR, spec, out, layout=layout, workers=workers, force=force, quiet=quiet,
                                  shard=shard, shards=shards, dask=dask)
    if not quiet:
        splits = (f"train {counts['train']}, test {counts['test']}" if layout == "native" else
                  f"all in train_x: train {counts['train']} then test {counts['test']}")
        images = f"{sum(counts.values())} of {spec.n} images" if shard else f"{spec.n} images"
        click.echo(f"wrote {out}: {what + ', ' if what else ''}{images} ({splits}), {spec.objects} objects on "
                   f"{spec.size}x{spec.size} ({layout} layout, {_size(out)})")


@main.command()
@click.argument("shards", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=OutPath(), default=None,
              help="The merged file, or a folder (end it with /) for the kind's default name. Without --copy it "
                   "must lie in the shards' folder or above it. [default: lanes.h5 or sort_of_clevr.h5 here]")
@click.option("--copy", is_flag=True,
              help="Copy the samples into a self-contained file (the one-machine file byte for byte) instead of "
                   "virtual arrays over the shards.")
@workers_option
@force_option
@quiet_option
@domain_errors
def merge(shards: tuple[Path, ...], out: str | None, copy: bool, workers: int, force: bool, quiet: bool) -> None:
    """Merge the SHARDS of one dataset (every index 0..N-1 once) into one file.

    By default the merged file's arrays are HDF5 virtual datasets over the shards: nothing is copied,
    and every reader (info, preview, the datasets, train) reads it like any other file; the shards
    must stay where they are (a missing or changed shard is an error when the file is opened).
    --copy writes a self-contained file instead (--workers processes).
    """
    from .merge import check_shards, merge_shards

    shard_set = check_shards(shards)  # before the target is made: a bad set is the shards' fault
    target = out_file(out, shard_set.kind.file_name())
    total = sum(shard_set.lengths.values()) if copy else 0
    with outputs([target], force), progress(total, f"merge {target.name}", quiet or not copy) as advance:
        result = merge_shards(shard_set, target, copy=copy, force=force, workers=workers, progress=advance)
    if not quiet:
        splits = ", ".join(f"{k} {v}" for k, v in result.lengths.items())
        how = "copied into one file" if copy else "virtual arrays over them"
        click.echo(f"wrote {target}: {result.kind}, {splits}, from {result.shards} shards ({how}, {_size(target)})")


# -- exports -----------------------------------------------------------------------------------------

@main.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["parquet", "webdataset"]), default="parquet", show_default=True,
              help="parquet: a folder per split of Parquet files that Hugging Face datasets loads (needs the "
                   "[export] extra); webdataset: tar shards of NNNNNN.png + NNNNNN.json.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Export folder (new, empty, or an earlier export with --force). [default: <file>_<format> here]")
@click.option("--verify", "verify_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Check an export folder against its SHA256SUMS (no FILE) and stop.")
@click.option("--workers", type=click.IntRange(1, 256), default=lambda: os.cpu_count() or 1,
              show_default="number of CPUs", help="Threads encoding the PNGs; the export is identical for every count.")
@force_option
@quiet_option
@domain_errors
def export(file: Path | None, fmt: str, out: Path | None, verify_dir: Path | None, workers: int, force: bool,
           quiet: bool) -> None:
    """Export a data FILE for Hugging Face datasets (Parquet) or WebDataset, with a dataset card.

    Every field of every sample, exact: images as PNG (the Hugging Face Image layout in Parquet), the
    other arrays as typed columns, class ids with their names. The folder holds README.md (a dataset
    card with the Hub's YAML header: features, splits, licence; what the data is, its generation
    parameters, the command that regenerates it byte for byte, the citation) and SHA256SUMS, which
    `coorddata export --verify DIR` checks.
    """
    from .export import export_file, verify_export

    if verify_dir is not None:
        if file is not None or out is not None:
            raise click.UsageError("--verify DIR checks an export; give no FILE or --out with it.")
        result = verify_export(verify_dir)
        if not quiet:
            click.echo(f"{verify_dir}: all {len(result.files)} files ({_fmt_size(result.bytes)}) match SHA256SUMS")
        return
    if file is None:
        raise click.UsageError("Missing argument 'FILE' (or --verify DIR).")
    target = out if out is not None else Path(f"{file.stem}_{fmt}")
    from .store import summarize

    total = sum(summarize(file).lengths.values())
    with progress(total, f"export {file.name}", quiet) as advance:
        result = export_file(file, target, fmt=fmt, force=force, workers=workers, progress=advance)
    if not quiet:
        splits = ", ".join(f"{name} {n}" for name, n in result.splits.items())
        click.echo(f"wrote {target}: {fmt}, {splits} ({len(result.files)} files, {_fmt_size(result.bytes)}, and "
                   f"SHA256SUMS; {file.name}: {_size(file)})")


def _fmt_size(n: int) -> str:
    from .writer import format_bytes

    return format_bytes(n)


# -- training ----------------------------------------------------------------------------------------

class _ArchOption(click.Option):
    """--arch, whose help lists the trainable archs: read from the registry only when help is shown,
    so that the CLI starts without importing torch."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from .train import trainable_archs

        self.help = f"{self.help} One of: {', '.join(trainable_archs())}."
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = self.help.split(" One of: ")[0]


def device_option(fn: Callable) -> Callable:
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                        help="Where to run; auto picks cuda when available.")(fn)


def checkpoint_option(fn: Callable) -> Callable:
    return click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
                        help="Which of the run's checkpoints: best (selected on validation, or a GAN's samples) "
                             "or last.")(fn)


def train_options(fn: Callable) -> Callable:
    """``coorddata train``'s options, one per entry of :data:`coordconv_data.train.options.OPTIONS`."""
    from .train.options import OPTIONS

    for o in reversed(OPTIONS):
        if o.type is bool:  # --with-r/--without-r, --per-input/--no-per-input
            off = o.flags.replace("--with-", "--without-", 1) if o.flags.startswith("--with-") else "--no-" + o.flags[2:]
            fn = click.option(f"{o.flags}/{off}", o.name, default=None, help=o.help)(fn)
        else:
            kind = (click.Choice(o.choices) if o.choices else
                    click.Path(dir_okay=False, path_type=Path) if o.type == "path" else o.type)
            fn = click.option(o.flags, o.name, type=kind, default=None, help=o.help)(fn)
    return fn


@main.command()
@click.option("--arch", cls=_ArchOption, default=None, help="Model to train (required unless --resume).")
@train_options
@click.option("--seed", type=click.IntRange(0, TRAIN_SEED_MAX), default=0, show_default=True,
              help="Seed of initialisation, shuffling and noise.")
@device_option
@click.option("--out", type=OutPath(file_okay=False, path_type=Path), default=None,
              help="Run folder (new or empty). [default: runs/<arch>-<dataset>-<time>]")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Continue the run in this folder from its last.pt (same options; --epochs may grow).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML or JSON file of these options (a run's config.json too); options given here override it.")
@click.option("--print-config", is_flag=True, help="Print the resolved options as YAML (a --config file) and stop.")
@quiet_option
@domain_errors
def train(resume: Path | None, config: Path | None, print_config: bool, quiet: bool, **options: Any) -> None:
    """Train a model on a data file; write a run folder.

    The arch's task decides inputs, targets, loss and metrics: classification (exact-pixel
    accuracy), rendering (IoU), regression (mean pixel error), segmentation (per-class recall and
    IoU, mean IoU, pixel accuracy), gan (one discriminator and two generator steps per iteration;
    the geometry score of its samples). best.pt is the epoch best on a validation split carved from
    train (GANs: on their samples), never on test. The run folder holds config.json, metrics.csv,
    last.pt, best.pt, curves.png and predictions.png (GANs: samples_<epoch>.png), and with --logger
    tensorboard TensorBoard's event files. Options may come from a YAML or JSON --config file (a run's
    config.json repeats that run); --print-config shows them resolved. Under `torchrun
    --nproc-per-node N -m coordconv_data train ...` every arch trains with DistributedDataParallel.
    """
    from .train import TrainConfig
    from .train import resume as resume_run
    from .train.options import HPARAMS
    from .train import train as run_training
    from .train.allocator import keep_freed_memory

    ctx = click.get_current_context()
    log = None if quiet else (lambda line: click.echo(line, err=True))
    bar = lambda total, label: progress(total, label, quiet)  # noqa: E731
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
    given: dict[str, Any] = {}  # what the user gave on the command line, hyperparameters under hparams
    for name, value in values.items():
        if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT:
            continue
        if name in HPARAMS:
            given.setdefault("hparams", {})[name] = value
        else:
            given[name] = value
    if resume is not None:
        if config is not None or print_config:
            raise click.UsageError("--resume continues a run with its own options; --config and --print-config "
                                   "are for a new run.")
        keep_freed_memory()
        summary = resume_run(resume, given, progress=bar, log=log)
    else:
        from .train.configfile import merge_options, read_config_file

        chosen = merge_options(read_config_file(config) if config is not None else {}, given)
        if chosen.get("arch") is None:
            raise click.UsageError("Missing option '--arch' (or --config FILE naming one, or --resume RUN_DIR).")
        cfg = TrainConfig(**chosen)
        if print_config:
            _print_config(cfg)
            return
        keep_freed_memory()
        summary = run_training(cfg, progress=bar, log=log)
    if summary.rank == 0 and not quiet:
        click.echo(summary.text())
    if summary.world_size > 1:
        # Under torchrun, leave without running C++ static destructors: with the process group already
        # destroyed, one of gloo's threads was still joinable at exit now and then under load, and the
        # rank died of "terminate called without an active exception" after a complete run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _print_config(cfg: Any) -> None:
    """``cfg`` resolved (every default of its arch filled in), as a YAML file ``--config`` reads."""
    from .train.config import resolve
    from .train.configfile import printable_options, to_yaml

    resolved = resolve(cfg)
    click.echo(to_yaml(printable_options(resolved), header=f"coorddata train --config FILE: {resolved.arch}, "
                       "every default resolved", comments={
                           "data": "null: the arch's default file in the current folder, made if missing",
                           "out": "null: runs/<arch>-<dataset>-<time>"}), nl=False)


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
                     if k not in ("epoch", "split", "seconds"))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Evaluate on this file instead of the run's own data file.")
@device_option
@checkpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@domain_errors
def evaluate(run_dir: Path, data: Path | None, device: str, checkpoint: str, as_json: bool) -> None:
    """Print the metrics of a run's best.pt on its data file's train, val and test splits.

    The run's data file is the absolute path it recorded; one that changed since is refused (pass
    --data to score another file). For a GAN run: the geometry score of its samples (the run's
    fixed latents) and of as many real images of the file (the ceiling).
    """
    from .train import evaluate_run

    result = evaluate_run(run_dir, str(data) if data is not None else None, device=device, checkpoint=checkpoint)
    if as_json:  # NaN (a class absent from the split) is not JSON: null
        clean = {k: ({m: (None if isinstance(v, float) and v != v else v) for m, v in val.items()}
                     if isinstance(val, dict) else val) for k, val in result.items()}
        click.echo(json.dumps(clean, sort_keys=True))
        return
    click.echo(f"{result['arch']} ({result['task']}), {result['checkpoint']}.pt from epoch {result['epoch']}, "
               f"on {result['data']}")
    for split in ("train", "val", "test", "generated", "real"):
        if split in result:
            click.echo(f"  {split}: {_fmt_metrics(result[split])}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=OutPath(), default=None,
              help="Picture to write: .png, .jpg, .bmp, .tif or .webp, as its extension says; or a folder (made if "
                   "missing; end it with /) for interp.png. [default: interp.png]")
@click.option("--rows", type=click.IntRange(1, 32), default=8, show_default=True, help="Latent walks, one per row.")
@click.option("--steps", type=click.IntRange(2, 32), default=10, show_default=True,
              help="Images per walk, both ends included.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the walks' end points (the same seed gives the same walks for every run).")
@click.option("--path", type=click.Choice(["norm", "linear"]), default="norm", show_default=True,
              help="norm: every point rescaled to the interpolated norm of the ends (the original's "
                   "util.interpolate); linear: straight lines, whose middle has about 0.7 of the ends' norm.")
@checkpoint_option
@click.option("--scale", type=click.IntRange(1, 4), default=1, show_default=True, help="Enlarge each image.")
@device_option
@force_option
@quiet_option
@domain_errors
def interpolate(run_dir: Path, out: str | None, rows: int, steps: int, seed: int, path: str, checkpoint: str, scale: int,
                device: str, force: bool, quiet: bool) -> None:
    """Draw walks through a GAN run's latent space as a grid (one walk per row).

    The paper's test of smoothness: CoordConv GAN objects move across the canvas as z changes, while
    plain GAN objects tend to fade out in one place and in at another.
    """
    from .train.interpolate import interpolation_grid
    from .viz import check_image_path, write_image

    out = out_file(out, "interp.png")
    check_image_path(out)
    with outputs([out], force):
        picture = interpolation_grid(run_dir, rows=rows, steps=steps, seed=seed, checkpoint=checkpoint,
                                     device=device, scale=scale, path=path)
        write_image(picture, out, force=force)
    if not quiet:
        click.echo(f"wrote {out}: {rows} walks of {steps} images from {run_dir / (checkpoint + '.pt')}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def models(as_json: bool) -> None:
    """List every trainable arch: its task, dataset, parameter count and hyperparameters."""
    from .train.catalog import catalog

    entries = catalog()
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    width = max(len(e["arch"]) for e in entries)
    for e in entries:
        hp = ", ".join(f"{k}={v}" for k, v in e["hparams"].items()) or "none"
        click.echo(f"{e['arch']:<{width}}  {e['task']:<14} {e['dataset']:<13}  {e['parameters']:>10,} parameters  "
                   f"hyperparameters: {hp}")
        click.echo(f"{'':<{width}}  {e['summary']}")
        click.echo(f"{'':<{width}}  defaults: " + ", ".join(f"{k}={v}" for k, v in e["defaults"].items() if k != "hparams"))
        click.echo(f"{'':<{width}}  from: {e['source']}")




@main.command()
@click.argument("names", nargs=-1)
@click.option("--budget", type=click.Choice(list(BUDGETS)), default="quick", show_default=True,
              help="; ".join(f"{name}: {what}" for name, what in BUDGETS.items()) + " (--list: time estimates).")
@click.option("--seeds", type=click.IntRange(1, 1000), default=None,
              help="Train every run on seeds 0..N-1 (a run may say fewer). [default: quick 5, paper 10, tiny 1]")
@click.option("--out", type=OutPath(file_okay=False, path_type=Path), default=Path("reproduce"), show_default=True,
              help="Folder for data, run folders and report.md; a finished run there is reused.")
@click.option("--list", "show", is_flag=True, help="List the experiments and their estimated time, run nothing.")
@quiet_option
@domain_errors
def reproduce(names: tuple[str, ...], budget: str, seeds: int | None, out: Path, show: bool, quiet: bool) -> None:
    """Test the paper's claims (or the NAMES given) over seeds with the engine and write OUT/report.md.

    Classification, regression and rendering on both splits (CoordConv against deconvolution and
    plain convolution), the Lanes study (plain, coordinate-bias and CoordConv FCNs), and the GANs
    (one grey square; Sort-of-Clevr). Every claim is judged on each seed at the epoch selected on
    validation (GANs: on their samples), on test: how many seeds hold it, the median and its
    interval. An interrupted reproduce continues: finished runs are reused, unfinished ones resumed.
    """
    from .train.experiments import listing
    from .train.reproduce import planned
    from .train.reproduce import reproduce as run_all

    planned(list(names), budget, seeds)  # an unknown name or a bad count: one line, before anything
    if show:
        shown = [e for e in listing(budget, seeds) if not names or e["name"] in names]
        for e in shown:
            est = f"~{e['estimate_s'] / 60:.0f} min on 2 CPU cores" if e["estimate_s"] else "no estimate (a GPU's work)"
            click.echo(f"{e['name']:<16} {est:<28} {e['trainings']:>3} trainings  {e['title']} [{', '.join(e['runs'])}]")
        if len(shown) > 1 and all(e["estimate_s"] for e in shown):
            click.echo(f"{'all':<16} ~{sum(e['estimate_s'] for e in shown) / 60:.0f} min on 2 CPU cores")
        return
    from .train.allocator import keep_freed_memory

    keep_freed_memory()
    log = None if quiet else (lambda line: click.echo(line, err=True))
    report = run_all(list(names), budget, out, seeds=seeds, log=log,
                     progress=lambda total, label: progress(total, label, quiet))
    if not quiet:
        click.echo(f"wrote {report}")
