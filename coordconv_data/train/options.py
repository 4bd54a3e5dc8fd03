"""Every option of a training run, in one place that imports no torch.

:class:`TrainConfig` holds a run's options; :data:`OPTIONS` describes each one (its type, choices,
help and, for a model hyperparameter, that it is one), and the command line builds ``coorddata
train``'s options from it, so a new option is one entry here. The bounds and choices the trainer
checks (:mod:`.config`), the budgets of ``coorddata reproduce`` and the seeds' range live here too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["TrainConfig", "Option", "OPTIONS", "HPARAMS", "SEED_MAX", "OPTIMIZERS", "LR_POLICIES",
           "INTERM_LOSSES", "DEVICES", "CHECKPOINTS", "LOGGERS", "RESUMABLE", "TAKEN_BY", "BUDGETS",
           "MAX_EVAL_SAMPLES", "RUN_FORMAT", "RUN_OPTIONS", "option", "flag"]

SEED_MAX = 2**63 - 1  # a training seed: initialisation, shuffling and noise (torch takes 64 bits)
OPTIMIZERS = ("adam", "sgd")
LR_POLICIES = ("constant", "step")
INTERM_LOSSES = ("softmax", "mse", "none")
DEVICES = ("auto", "cpu", "cuda")
CHECKPOINTS = ("best", "last")
LOGGERS = ("csv", "tensorboard")  # metrics.csv is always written; tensorboard adds event files
MAX_EVAL_SAMPLES = 50000  # generated images are kept in memory as uint8
RESUMABLE = ("epochs", "device", "logger")  # the options a resumed run may change
RUN_FORMAT = "coordconv_data-run-1"  # the format of a run folder's config.json and checkpoints
TAKEN_BY = {"lr2": "GAN archs", "eval_samples": "GAN archs", "val_fraction": "supervised archs",
            "interm_loss": "coordconv_rendering", "l2_locate": "coordconv_rendering"}  # options only some archs take
#: Options added after runs were first recorded -> the option whose value an older run used in their
#: place: a run folder without ``l2_locate`` decayed its locating stage with its one ``l2``, and is
#: resumed so, not with today's default.
ADDED_LATER = {"l2_locate": "l2"}

#: ``coorddata reproduce``'s budgets: name -> what it runs.
BUDGETS = {
    "quick": "every claim on several seeds with the departures each experiment states (fewer epochs, smaller "
             "Lanes images, narrower GANs), sized for 2 CPU cores",
    "paper": "the original's recipes at the original's scale (a GPU's work)",
    "tiny": "one epoch of every run with the smallest models and files, to check the machinery",
}


@dataclass
class TrainConfig:
    """The options of a training run; ``None`` means the arch's default (``config.defaults_for``).

    ``hparams`` are the model's hyperparameters (``mul``, ``fs``, ``z_dim``, ...: whatever the arch's
    builder takes); ``config.resolve`` completes them with the builder's defaults, and fills ``task``
    and ``dataset`` from the model registry.
    """

    arch: str
    data: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr2: float | None = None  # GANs: the generator's learning rate (lr is the discriminator's)
    opt: str | None = None
    l2: float | None = None
    eval_samples: int | None = None  # GANs: generated images scored after every epoch
    val_fraction: float | None = None  # share of the train split held out to select best.pt
    interm_loss: str | None = None  # coordconv_rendering: softmax, mse or none on the stage-1 logits
    l2_locate: float | None = None  # coordconv_rendering: l2 of the locating stage's kernels (the painter's: l2)
    lr_policy: str | None = None  # constant, or step: lr * lr_step_ratio every lr_step_every epochs
    lr_step_every: int | None = None
    lr_step_ratio: float | None = None
    lr_max_steps: int | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    logger: str | None = None  # csv (metrics.csv alone) or tensorboard (event files too); None: csv
    task: str | None = None  # filled by resolve: the arch's task
    dataset: str | None = None  # filled by resolve: the arch's dataset kind

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Option:
    """One option of ``coorddata train``: a :class:`TrainConfig` field, or (``hparam``) a model
    hyperparameter that goes to ``TrainConfig.hparams``.

    ``type`` is ``int``, ``float``, ``str``, ``bool`` (a ``--x/--no-x`` switch) or ``"path"``;
    ``choices`` limits a ``str``; ``flag`` is the option's spelling when it is not ``--`` and the
    name with dashes.
    """

    name: str
    type: Any
    help: str
    choices: tuple[str, ...] = ()
    flag: str | None = None
    hparam: bool = False

    @property
    def flags(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


_DEFAULT = " [default: per arch]"
OPTIONS: tuple[Option, ...] = (
    Option("data", "path", "HDF5 file of the arch's dataset kind, or a spec whose samples are drawn on the fly, "
                           "equal to its file's: KIND:OPTION=VALUE,... with the options of the kind's generator "
                           "command (lanes:n=10000000,seed=0; sort-of-clevr:n=50000). [default: the generator's "
                           "default file here (not_so_clevr_quadrant.h5, sort_of_clevr.h5 or lanes.h5), made if "
                           "missing]"),
    Option("epochs", int, "Total epochs." + _DEFAULT),
    Option("batch_size", int, "Batch size (per process under torchrun)." + _DEFAULT),
    Option("lr", float, "Learning rate (GANs: the discriminator's)." + _DEFAULT),
    Option("lr2", float, "GANs: the generator's learning rate. [default: 0.0005]"),
    Option("opt", str, "Optimizer (sgd: momentum 0.9)." + _DEFAULT, OPTIMIZERS),
    Option("l2", float, "Adds l2 * sum(w**2) of the conv and dense kernels to the loss, as the original (GANs: the "
                        "CoordConv generator's kernels only)." + _DEFAULT),
    Option("lr_policy", str, "step: multiply the rate by --lr-step-ratio every --lr-step-every epochs, at most "
                             "--lr-max-steps times (the original's). [default: per arch: step for the deconv baselines]",
           LR_POLICIES),
    Option("lr_step_every", int, "Epochs between steps of the rate. [default: 200]"),
    Option("lr_step_ratio", float, "Factor of each step. [default: 0.1]"),
    Option("lr_max_steps", int, "Most steps of the rate. [default: 4]"),
    Option("interm_loss", str, "coordconv_rendering: a loss on its stage-1 logits against the one-hot centre (the "
                               "original's --interm_loss). [default: softmax]", INTERM_LOSSES),
    Option("l2_locate", float, "coordconv_rendering: --l2 of its locating stage's kernels (the painter's stay at "
                               "--l2; the original had one value for both). [default: 0.1]"),
    Option("val_fraction", float, "Share of the train split held out to select best.pt (0: the last epoch). "
                                  "[default: 0.1]"),
    Option("eval_samples", int, "GANs: generated images scored after every epoch (and as many real images, the "
                                "ceiling). [default: 1000]"),
    Option("mul", int, "Width multiplier, for archs that take it.", hparam=True),
    Option("fs", int, "Filter size, for archs that take it.", hparam=True),
    Option("z_dim", int, "GANs: length of the noise vector.", hparam=True),
    Option("width", int, "GANs: base channel count (64: the paper's widths).", hparam=True),
    Option("size", int, "GANs: image side (a multiple of 16).", flag="--image-size", hparam=True),
    Option("with_r", bool, "Add the radial coordinate channel, for archs that take it.", hparam=True),
    Option("init", str, "Lanes FCNs: study (the study's code's initialisation) or comparable (the variants share "
                        "every common weight; coordinate biases start at zero).", ("study", "comparable"), hparam=True),
    Option("per_input", bool, "fcn_vgg9_coordbias: one coordinate-bias pair per input channel, summed (the study's "
                              "first commit) instead of one per filter.", hparam=True),
    Option("logger", str, "Where the figures go besides metrics.csv (always written): csv alone, or tensorboard too "
                          "(event files in the run folder, with the options as hyperparameters and the pictures; "
                          "needs the [tensorboard] extra). [default: csv]", LOGGERS),
)
HPARAMS = tuple(o.name for o in OPTIONS if o.hparam)
#: What a run's options are called where they are written down (a config file, config.json): ``arch``,
#: every entry of :data:`OPTIONS` but the model hyperparameters (those go under ``hparams``), and the
#: options every command line has (seed, device, out).
RUN_OPTIONS = ("arch", *(o.name for o in OPTIONS if not o.hparam), "hparams", "seed", "device", "out")


def option(name: str) -> Option:
    """The :class:`Option` called ``name``."""
    return next(o for o in OPTIONS if o.name == name)


def flag(name: str) -> str:
    """The command-line spelling of option ``name`` (``size`` -> ``--image-size``)."""
    found = [o for o in OPTIONS if o.name == name]
    return found[0].flags if found else "--" + name.replace("_", "-")
