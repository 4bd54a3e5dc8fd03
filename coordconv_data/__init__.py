"""CoordConv paper datasets, layers, models and training.

The package root stays light: importing it (and running ``coorddata --help``) never imports torch.
"""

__version__ = "0.1.0"
