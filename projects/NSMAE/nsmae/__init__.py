"""NS-MAE glue for mmdet3d 1.x; importing registers every module.

Registered: models ``NSMAE``, ``NSMAEDataPreprocessor``, ``NSMAEGeneralizedLSSFPN``,
``NSMAEDepthLSSTransform``, ``NSMAESparseEncoder``, ``NSMAEConvFuser``,
``NSMAEImageMasker``, ``NSMAEPerspectiveRenderHead``, ``NSMAEBEVRenderHead``;
transform ``NSMAEImageAug3D``; hooks ``NSMAEFreezeLiDAREncoderHook``,
``NSMAERenderVisualizationHook`` and the shared ``SeededRandomnessHook``;
metric: the shared ``RenderQualityMetric`` (held-out PSNR / depth error).
"""
from render_pretrain import compat  # noqa: F401  (applies the environment shims)
from projects.common.render_quality_metric import RenderQualityMetric
from projects.common.seeded_randomness_hook import SeededRandomnessHook
from .conv_fuser import NSMAEConvFuser
from .data_preprocessor import NSMAEDataPreprocessor
from .depth_lss_transform import NSMAEDepthLSSTransform
from .freeze_hook import NSMAEFreezeLiDAREncoderHook
from .generalized_lss_fpn import NSMAEGeneralizedLSSFPN
from .image_aug import NSMAEImageAug3D
from .image_masker import NSMAEImageMasker
from .nsmae import NSMAE
from .render_heads import NSMAEBEVRenderHead, NSMAEPerspectiveRenderHead
from .sparse_encoder import NSMAESparseEncoder
from .visualization_hook import NSMAERenderVisualizationHook

__all__ = [
    'NSMAE', 'NSMAEDataPreprocessor', 'NSMAEGeneralizedLSSFPN', 'NSMAEDepthLSSTransform',
    'NSMAESparseEncoder', 'NSMAEConvFuser', 'NSMAEImageMasker',
    'NSMAEPerspectiveRenderHead', 'NSMAEBEVRenderHead', 'NSMAEImageAug3D',
    'NSMAEFreezeLiDAREncoderHook', 'NSMAERenderVisualizationHook', 'SeededRandomnessHook',
    'RenderQualityMetric'
]
