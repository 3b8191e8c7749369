"""Pure-PyTorch core for neural-rendering pre-training (NS-MAE, MIM4D).

Nothing in this package imports mmdet3d: camera/LiDAR geometry, ray
generation and sampling, volume and SDF rendering, masking, pooling and
interpolation ops, checkpoint key mapping and the synthetic world live here
and are shared by ``projects/NSMAE`` and ``projects/MIM4D``.

The environment shims in :mod:`render_pretrain.compat` are applied when that
module is imported, which every glue package (``projects.*``), tool and the
test suite do; importing the core alone stays light.
"""
__version__ = '0.1.0'
