"""MIM4D glue for mmdet3d 1.x; importing this package registers every module.

Registered: models ``MIM4D``, ``MIM4DImageMasker``, ``MIM4DVolumeTransform``,
``MIM4DTemporalPredictor``, ``MIM4DNeuSRenderHead``; dataset
``MIM4DNuScenesDataset``; transforms
``MIM4DLoadMultiViewSweeps``, ``MIM4DSweepImageAug``; hooks
``MIM4DRenderVisualizationHook`` and the shared ``SeededRandomnessHook``.
"""
from render_pretrain import compat  # noqa: F401  (applies the environment shims)
from projects.common.render_quality_metric import RenderQualityMetric
from projects.common.seeded_randomness_hook import SeededRandomnessHook
from .dataset import MIM4DNuScenesDataset
from .image_masker import MIM4DImageMasker
from .loading import MIM4DLoadMultiViewSweeps, MIM4DSweepImageAug
from .mim4d import MIM4D
from .render_head import MIM4DNeuSRenderHead
from .temporal_predictor import MIM4DTemporalPredictor
from .visualization_hook import MIM4DRenderVisualizationHook
from .volume_transform import MIM4DVolumeTransform

__all__ = [
    'MIM4D', 'MIM4DImageMasker', 'MIM4DVolumeTransform', 'MIM4DTemporalPredictor',
    'MIM4DNeuSRenderHead', 'MIM4DLoadMultiViewSweeps', 'MIM4DSweepImageAug',
    'MIM4DRenderVisualizationHook', 'MIM4DNuScenesDataset', 'SeededRandomnessHook',
    'RenderQualityMetric'
]
