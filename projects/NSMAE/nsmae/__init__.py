"""NS-MAE glue for mmdet3d 1.x; importing registers every module.

Registered: models ``NSMAE``, ``NSMAEDataPreprocessor``,
``NSMAEImageMasker``, ``NSMAEPerspectiveRenderHead``, ``NSMAEBEVRenderHead``;
hooks ``NSMAEFreezeLiDAREncoderHook``,
``NSMAERenderVisualizationHook`` and the shared ``SeededRandomnessHook``;
metric: the shared ``RenderQualityMetric`` (held-out PSNR / depth error).
The BEVFusion encoder parts come from ``projects.BEVFusionCompat.bevfusion_compat``
(imported here, so they are registered too).
"""
from render_pretrain import compat  # noqa: F401  (applies the environment shims)
from projects.common.render_quality_metric import RenderQualityMetric
from projects.common.seeded_randomness_hook import SeededRandomnessHook
import projects.BEVFusionCompat.bevfusion_compat  # noqa: F401  (registers the encoder parts)
from .data_preprocessor import NSMAEDataPreprocessor
from .freeze_hook import NSMAEFreezeLiDAREncoderHook
from .image_masker import NSMAEImageMasker
from .nsmae import NSMAE
from .render_heads import NSMAEBEVRenderHead, NSMAEPerspectiveRenderHead
from .visualization_hook import NSMAERenderVisualizationHook

__all__ = [
    'NSMAE', 'NSMAEDataPreprocessor', 'NSMAEImageMasker',
    'NSMAEPerspectiveRenderHead', 'NSMAEBEVRenderHead',
    'NSMAEFreezeLiDAREncoderHook', 'NSMAERenderVisualizationHook', 'SeededRandomnessHook',
    'RenderQualityMetric'
]
