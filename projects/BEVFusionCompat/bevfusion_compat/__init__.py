"""BEVFusion-compatible encoder parts for mmdet3d 1.x; importing registers every module.

Pure-PyTorch / mmcv modules with the parameter layout of mmdetection3d's
``projects/BEVFusion`` (their checkpoints load into the stock model by
name), used by the NS-MAE pre-training detector and the BEV map segmentation
detector alike. Registered: models ``BEVFusionCompatDepthLSSTransform``,
``BEVFusionCompatSparseEncoder``, ``BEVFusionCompatConvFuser``,
``BEVFusionCompatGeneralizedLSSFPN``; transform ``BEVFusionCompatImageAug3D``.
The detectors build their encoder stages through
:class:`~.encoder.BEVFusionEncoderMixin` (stock attribute names).

The ``BEVFusionCompat`` prefix keeps the names apart from upstream's own
registrations (``DepthLSSTransform``, ``BEVFusionSparseEncoder``, ...), which
can be imported in the same process (the stock BEVFusion chain).
"""
from render_pretrain import compat  # noqa: F401  (applies the environment shims)
from .conv_fuser import BEVFusionCompatConvFuser
from .depth_lss_transform import BEVFusionCompatDepthLSSTransform
from .generalized_lss_fpn import BEVFusionCompatGeneralizedLSSFPN
from .image_aug import BEVFusionCompatImageAug3D
from .sparse_encoder import BEVFusionCompatSparseEncoder

__all__ = [
    'BEVFusionCompatConvFuser', 'BEVFusionCompatDepthLSSTransform',
    'BEVFusionCompatGeneralizedLSSFPN', 'BEVFusionCompatImageAug3D', 'BEVFusionCompatSparseEncoder'
]
