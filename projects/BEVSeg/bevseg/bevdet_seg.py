"""BEV map segmentation on BEVDet's camera encoder (MIM4D's image side)."""
from typing import List, Optional, Sequence

from torch import Tensor

from mmdet3d.models import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from projects.BEVDetCompat.bevdet_compat.bevdet_compat import BEVDetCompat
from .map_segmentation import MapSegmentationMixin


@MODELS.register_module()
class BEVDetSeg(MapSegmentationMixin, BEVDetCompat):
    """Camera-only BEV map segmentation with BEVDet's encoder.

    images -> ``img_backbone`` -> ``img_neck`` -> ``img_view_transformer``
    (LSS lift + BEV pooling, ``BEVDetLSSViewTransformer``) ->
    ``img_bev_encoder_backbone`` -> ``img_bev_encoder_neck`` -> ``seg_head``
    (``BEVFusionSegHead``). The image side is :class:`BEVDetCompat`'s (same
    forward, same attribute names), so MIM4D's pre-trained ``img_backbone``,
    ``img_neck`` and depth net convert into it with the ``bevdet`` layout of
    ``tools/model_converters/convert_checkpoint.py``. The BEV map leaves the
    encoder as (B, C, N_y, N_x) (rows along y): the head's
    ``grid_transform`` needs ``input_axes='yx'`` and the view transformer's
    x / y grid as ``input_scope``.

    Ground truth ``gt_map_seg`` ([C, X, Y] bool, ``LoadBEVMapLabel`` +
    ``PackBEVSegInputs``); predictions ``pred_map_seg`` ([C, X, Y]
    probabilities) for ``BEVMapSegMetric``, as :class:`BEVFusionSeg`.

    Args:
        seg_head (dict): ``BEVFusionSegHead`` (``input_axes='yx'``).
        data_preprocessor (dict, optional): ``Det3DDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
        **encoders (dict): :class:`BEVDetCompat`'s encoder configs, all
            required (``BEVDET_ENCODER_KEYS``): ``img_backbone`` (e.g.
            ``mmdet.ResNet``), ``img_neck`` (``BEVDetCustomFPN``),
            ``img_view_transformer`` (``BEVDetLSSViewTransformer``),
            ``img_bev_encoder_backbone`` (``BEVDetCustomResNet``) and
            ``img_bev_encoder_neck`` (``BEVDetFPNLSS``). A missing or
            unknown key raises ``TypeError``.
    """

    def __init__(self,
                 seg_head: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **encoders: dict) -> None:
        # BEVDetCompat.__init__ builds a detection head: build the same encoder here
        Base3DDetector.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        axes = seg_head.get('grid_transform', {}).get('input_axes', 'xy')
        if axes != 'yx':
            raise ValueError("BEVDetSeg: the BEVDet encoder's BEV map is (B, C, N_y, N_x); "
                             f"set seg_head.grid_transform.input_axes='yx' (got {axes!r})")
        self._build_image_encoder('BEVDetSeg', **encoders)
        self.seg_head = MODELS.build(seg_head)

    def seg_bev(self, batch_inputs: dict,
                batch_data_samples: Sequence[Det3DDataSample]) -> Tensor:
        """The encoder's BEV map (B, C, N_y, N_x), lidar frame."""
        bev_feats, _ = self.extract_feat(batch_inputs, batch_data_samples)
        return bev_feats[0]

    def _forward(self, batch_inputs: dict,
                 batch_data_samples: Optional[List[Det3DDataSample]] = None,
                 **kwargs) -> Tensor:
        """Raw logits [B, C, X, Y]."""
        if batch_data_samples is None:
            raise ValueError('BEVDetSeg._forward needs data samples (camera matrices)')
        return self.seg_head(self.seg_bev(batch_inputs, batch_data_samples))
