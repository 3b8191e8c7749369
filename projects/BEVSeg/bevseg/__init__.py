"""BEV map segmentation downstream glue for mmdet3d 1.x; importing registers every module.

Registered: models ``BEVFusionSeg``, ``BEVFusionSegHead``; dataset
``BEVSegNuScenesDataset``; transforms ``LoadBEVMapLabel``,
``PackBEVSegInputs``; metric ``BEVMapSegMetric``. The encoder modules
(``NSMAEGeneralizedLSSFPN``, ``NSMAEDepthLSSTransform``,
``NSMAESparseEncoder``, ``NSMAEConvFuser``) come from ``projects.NSMAE.nsmae``.
"""
from render_pretrain import compat  # noqa: F401  (applies the environment shims)
import projects.NSMAE.nsmae  # noqa: F401  (registers the BEVFusion encoder modules)
from .bevfusion_seg import BEVFusionSeg
from .dataset import BEVSegNuScenesDataset
from .map_label import LoadBEVMapLabel, PackBEVSegInputs
from .metric import BEVMapSegMetric
from .seg_head import BEVFusionSegHead

__all__ = [
    'BEVFusionSeg', 'BEVFusionSegHead', 'BEVSegNuScenesDataset', 'LoadBEVMapLabel',
    'PackBEVSegInputs', 'BEVMapSegMetric'
]
