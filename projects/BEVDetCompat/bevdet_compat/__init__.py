"""BEVDetCompat glue: a BEVDet-compatible camera detector for mmdet3d 1.x.

Importing this package registers, in mmdet3d's registries:

- MODELS: ``BEVDetCompat`` (detector), ``BEVDetCustomFPN`` (image neck),
  ``BEVDetLSSViewTransformer`` (view transformer), ``BEVDetCustomResNet``
  and ``BEVDetFPNLSS`` (BEV encoder), ``BEVDetCenterHead`` (CenterHead with
  official per-task Scale-NMS / circle NMS at test time);
- TRANSFORMS: ``BEVDetBEVAug`` (BEV rotation / scale / flip of boxes, recording
  ``bda_matrix`` that the detector applies to the lifted geometry),
  ``BEVDetImageAug`` (multi-view resize/crop/flip/rotate that records
  ``img_aug_matrix``).
- HOOKS: the shared ``SeededRandomnessHook`` (seeded augmentation per
  worker, epoch and rank).
"""
from render_pretrain import compat  # noqa: F401  (applies the environment shims)
from projects.common.seeded_randomness_hook import SeededRandomnessHook

from .bev_aug import BEVDetBEVAug
from .bevdet_compat import BEVDetCompat
from .bevdet_head import BEVDetCenterHead
from .custom_fpn import BEVDetCustomFPN
from .custom_resnet import BEVDetCustomResNet
from .fpn_lss import BEVDetFPNLSS
from .image_aug import BEVDetImageAug
from .lss_view_transformer import BEVDetLSSViewTransformer

__all__ = [
    'BEVDetBEVAug', 'BEVDetCenterHead', 'BEVDetCompat', 'BEVDetCustomFPN',
    'BEVDetCustomResNet', 'BEVDetFPNLSS', 'BEVDetImageAug',
    'BEVDetLSSViewTransformer', 'SeededRandomnessHook'
]
