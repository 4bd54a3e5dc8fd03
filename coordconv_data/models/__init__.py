"""CoordConv layers, the coordinate-bias convolution, and every architecture by name.

Importing this package imports torch and registers all models; nothing else in ``coordconv_data``
imports it at package import time (so ``coorddata --help`` stays light).

Layers: :class:`AddCoords`, :class:`CoordConv1d`, :class:`CoordConv2d`, :class:`CoordConv3d`,
:class:`CoordBiasConv2d`, :class:`TiledCoordConv2d`. Registry: :func:`create_model`,
:func:`list_models`, :func:`model_info`, :func:`register_model`. Regularisation:
:func:`l2_parameters` (the kernels the original's ``--l2`` decayed in a model). The coordinate convention is
described in :mod:`coordconv_data.models.coords`; the task contracts in
:mod:`coordconv_data.models.registry`.
"""

from .coord_bias import CoordBiasConv2d, relative_positions
from .coords import (
    AddCoords,
    CoordConv1d,
    CoordConv2d,
    CoordConv3d,
    coordinate_channels,
    denormalize_coords,
    normalize_coords,
)
from .registry import (
    DATASETS,
    TASK_CONTRACTS,
    TASKS,
    HyperparameterError,
    ModelInfo,
    TaskContract,
    UnknownModelError,
    create_model,
    is_model,
    list_models,
    model_info,
    register_model,
)
from .l2 import kernel_parameters, l2_parameters
from .tiled import TiledCoordConv2d
from .weight_init import comparable_kaiming_init_, glorot_uniform_, he_normal_

# Imported for their @register_model side effect; the classes are public too.
from . import gans, lanes_fcn, not_so_clevr  # noqa: E402  isort: skip
from .lanes_fcn import FCNVGG9  # noqa: E402
from .not_so_clevr import (  # noqa: E402
    ConvRegressor,
    ConvRegressorFC,
    CoordConvImagePainter,
    CoordConvPainter,
    CoordConvRegressor,
    DeconvPainter,
)
from .gans import CoordConvGenerator, DCGANDiscriminator, DCGANGenerator, GANPair  # noqa: E402

__all__ = [
    # layers
    "AddCoords",
    "CoordConv1d",
    "CoordConv2d",
    "CoordConv3d",
    "CoordBiasConv2d",
    "TiledCoordConv2d",
    "coordinate_channels",
    "relative_positions",
    "normalize_coords",
    "denormalize_coords",
    # init and regularisation
    "kernel_parameters",
    "l2_parameters",
    "he_normal_",
    "glorot_uniform_",
    "comparable_kaiming_init_",
    # registry
    "TASKS",
    "DATASETS",
    "TASK_CONTRACTS",
    "TaskContract",
    "ModelInfo",
    "UnknownModelError",
    "HyperparameterError",
    "register_model",
    "create_model",
    "list_models",
    "model_info",
    "is_model",
    # architectures
    "CoordConvPainter",
    "DeconvPainter",
    "CoordConvImagePainter",
    "ConvRegressor",
    "ConvRegressorFC",
    "CoordConvRegressor",
    "DCGANGenerator",
    "CoordConvGenerator",
    "DCGANDiscriminator",
    "GANPair",
    "FCNVGG9",
]
