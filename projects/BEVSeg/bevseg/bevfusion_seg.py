"""BEVFusion-style BEV map segmentation detector (camera, LiDAR or both)."""
from typing import Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor

from mmdet3d.models import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from projects.BEVFusionCompat.bevfusion_compat.encoder import BEVFusionEncoderMixin
from .map_segmentation import MapSegmentationMixin


@MODELS.register_module()
class BEVFusionSeg(MapSegmentationMixin, BEVFusionEncoderMixin, Base3DDetector):
    """BEV map segmentation on BEVFusion's encoder and decoder.

    ``img_backbone`` -> ``img_neck`` -> ``view_transform`` (camera BEV) and
    ``pts_voxel_encoder`` -> ``pts_middle_encoder`` (LiDAR BEV) ->
    ``fusion_layer`` -> ``pts_backbone`` (stock ``SECOND``) -> ``pts_neck``
    (stock ``SECONDFPN``) -> ``seg_head`` (``BEVFusionSegHead``). The
    attribute names are mmdet3d BEVFusion's (mit-han-lab's
    ``encoders.camera.*``, ``encoders.lidar.backbone``, ``fuser``,
    ``decoder.*``, ``heads.map``), so NS-MAE encoders and mit-han-lab
    checkpoints convert into it (layout ``bevseg`` of
    ``tools/model_converters/convert_checkpoint.py``). The encoder forward
    is NS-MAE's (:class:`BEVFusionEncoderMixin`), without any masking.

    Modality follows the configured branches: camera-only (no
    ``pts_middle_encoder``), LiDAR-only (no ``img_backbone``) or camera +
    LiDAR (``fusion_layer``).

    Ground truth: the data-sample field ``gt_map_seg`` ([C, X, Y] bool,
    ``LoadBEVMapLabel`` + ``PackBEVSegInputs``). Predictions: the field
    ``pred_map_seg`` ([C, X, Y] probabilities in [0, 1]) for
    ``BEVMapSegMetric``.

    Args:
        data_preprocessor (dict): ``Det3DDataPreprocessor``; with a LiDAR
            branch ``voxel=True, voxel_type='hard'``.
        pts_backbone, pts_neck (dict, optional): BEV decoder.
        seg_head (dict): ``BEVFusionSegHead`` config.
        depth_input (str): LiDAR depth map fed to the view transform's
            ``dtransform``: ``'all'`` (every point) or ``'none'`` (zeros;
            camera-only models, as NS-MAE's camera-only pre-training).
        init_cfg (dict, optional): Initialisation config.
        **encoders (dict, optional): The BEVFusion encoder configs, keyed as
            in mmdet3d's BEVFusion (``BEVFUSION_ENCODER_KEYS``):
            ``img_backbone``, ``img_neck``, ``view_transform`` (camera branch:
            ``BEVFusionCompatGeneralizedLSSFPN``,
            ``BEVFusionCompatDepthLSSTransform``), ``pts_voxel_encoder``,
            ``pts_middle_encoder`` (LiDAR branch) and ``fusion_layer`` (fuser,
            camera BEV first); a branch left out is absent. Another key
            raises ``TypeError``.
    """

    def __init__(self,
                 data_preprocessor: dict,
                 seg_head: dict,
                 pts_backbone: Optional[dict] = None,
                 pts_neck: Optional[dict] = None,
                 depth_input: str = 'all',
                 init_cfg: Optional[dict] = None,
                 **encoders: Optional[dict]) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if depth_input not in ('all', 'none'):
            raise ValueError(f"BEVFusionSeg: depth_input must be 'all' or 'none', got "
                             f'{depth_input!r}')
        self._build_bevfusion_encoders('BEVFusionSeg', **encoders)
        if self.with_lidar and not getattr(self.data_preprocessor, 'voxel', False):
            raise ValueError('BEVFusionSeg with a LiDAR branch needs '
                             'data_preprocessor.voxel=True (hard voxelisation)')
        if pts_neck is not None and pts_backbone is None:
            raise ValueError('BEVFusionSeg: pts_neck needs pts_backbone')
        self.pts_backbone = MODELS.build(pts_backbone) if pts_backbone else None
        self.pts_neck = MODELS.build(pts_neck) if pts_neck else None
        self.seg_head: BaseModule = MODELS.build(seg_head)
        self.depth_input = depth_input

    def extract_feat(self, batch_inputs: dict,
                     batch_data_samples: Sequence[Det3DDataSample]) -> Tensor:
        """Encode and decode the inputs into the head's BEV map.

        Returns:
            Tensor: [B, C, X, Y] decoder output (BEVFusion C+L: 512 channels,
            128 x 128 cells of 0.8 m).
        """
        bev = self.encode_bev(batch_inputs, batch_data_samples, self.depth_input)
        if self.pts_backbone is not None:
            bev = self.pts_backbone(bev)
            bev = self.pts_neck(bev) if self.pts_neck is not None else bev[0]
            if isinstance(bev, (list, tuple)):
                bev = bev[0]
        return bev

    def seg_bev(self, batch_inputs: dict,
                batch_data_samples: Sequence[Det3DDataSample]) -> Tensor:
        """The BEV map the segmentation head reads: :meth:`extract_feat`."""
        return self.extract_feat(batch_inputs, batch_data_samples)

    def _forward(self, batch_inputs: dict,
                 batch_data_samples: Sequence[Det3DDataSample]) -> Tensor:
        """Raw logits [B, C, X, Y]."""
        return self.seg_head(self.extract_feat(batch_inputs, batch_data_samples))
