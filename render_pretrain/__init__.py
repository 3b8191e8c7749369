"""Pure-PyTorch core for neural-rendering pre-training (NS-MAE, MIM4D).

Nothing in this package imports mmdet3d: camera/LiDAR geometry, ray
generation and sampling, volume and SDF rendering, masking, pooling and
interpolation ops, and checkpoint key mapping live here and are shared by
``projects/NSMAE`` and ``projects/MIM4D``.

Importing the package applies the environment shims in
:mod:`render_pretrain.compat`.
"""
from . import compat  # noqa: F401  (applies the shims on import)

__version__ = '0.1.0'
