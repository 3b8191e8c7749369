"""BEV map segmentation downstream glue for mmdet3d 1.x; importing registers every module.

Registered: models ``BEVFusionSeg``, ``BEVDetSeg`` (BEVDet's camera encoder,
MIM4D's image side), ``BEVFusionSegHead``; dataset
``BEVSegNuScenesDataset``; transforms ``LoadBEVMapLabel``,
``PackBEVSegInputs``; metric ``BEVMapSegMetric``. The encoder parts
(``BEVFusionCompatGeneralizedLSSFPN``, ``BEVFusionCompatDepthLSSTransform``,
``BEVFusionCompatSparseEncoder``, ``BEVFusionCompatConvFuser``) come from
``projects.BEVFusionCompat.bevfusion_compat``, BEVDetSeg's from
``projects.BEVDetCompat.bevdet_compat``.
"""
from render_pretrain import compat  # noqa: F401  (applies the environment shims)
import projects.BEVFusionCompat.bevfusion_compat  # noqa: F401  (registers the encoder parts)
import projects.BEVDetCompat.bevdet_compat  # noqa: F401  (registers BEVDetSeg's parts)
import projects.common  # noqa: F401  (registers SeededRandomnessHook)
from .bevdet_seg import BEVDetSeg
from .bevfusion_seg import BEVFusionSeg
from .dataset import BEVSegNuScenesDataset
from .map_label import LoadBEVMapLabel, PackBEVSegInputs
from .metric import BEVMapSegMetric
from .seg_head import BEVFusionSegHead

__all__ = [
    'BEVDetSeg', 'BEVFusionSeg', 'BEVFusionSegHead', 'BEVSegNuScenesDataset', 'LoadBEVMapLabel',
    'PackBEVSegInputs', 'BEVMapSegMetric'
]
