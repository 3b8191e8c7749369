"""Camera-only BEV detector whose module names match official BEVDet."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mmdet3d.models.detectors import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import ConfigType, OptConfigType, OptMultiConfig


def stack_view_matrices(batch_data_samples: Sequence[Det3DDataSample], key: str,
                        like: Tensor) -> Tensor:
    """Collect one per-view matrix meta key of a batch into a tensor.

    Args:
        batch_data_samples (Sequence[Det3DDataSample]): B samples whose
            ``metainfo[key]`` holds N_cam matrices (3, 3) or (4, 4).
        key (str): Meta key, e.g. ``'cam2img'``, ``'lidar2cam'``,
            ``'img_aug_matrix'``.
        like (Tensor): Tensor whose device and dtype the result follows.

    Returns:
        Tensor: (B, N_cam, 4, 4); 3x3 matrices are embedded in the identity.

    Raises:
        KeyError: If a sample lacks ``key``.
        ValueError: If the matrices are not 3x3/4x4 or N_cam differs.
    """
    mats = []
    for i, sample in enumerate(batch_data_samples):
        if key not in sample.metainfo:
            raise KeyError(f'BEVDetCompat: data sample {i} has no meta key {key!r}; add it to '
                           'Pack3DDetInputs(meta_keys=...) (img_aug_matrix comes from '
                           'BEVDetImageAug)')
        mats.append(np.asarray(sample.metainfo[key], dtype=np.float64))
    shapes = {m.shape for m in mats}
    if len(shapes) != 1 or len(mats[0].shape) != 3 or mats[0].shape[1:] not in ((3, 3), (4, 4)):
        raise ValueError(f'BEVDetCompat: meta key {key!r} must be N_cam matrices of shape (3, 3) '
                         f'or (4, 4), equal across the batch; got shapes {sorted(shapes)}')
    arr = np.stack(mats)
    out = np.tile(np.eye(4), arr.shape[:2] + (1, 1))
    out[..., :arr.shape[-2], :arr.shape[-1]] = arr
    return like.new_tensor(out)


# Meta keys written by mmdet3d's LiDAR-frame augmentations (GlobalRotScaleTrans,
# RandomFlip3D, BEVFusion's BEVFusionGlobalRotScaleTrans / BEVFusionRandomFlip3D).
BEV_AUG_META_KEYS = ('pcd_rotation', 'pcd_rotation_angle', 'pcd_scale_factor', 'pcd_trans',
                     'pcd_horizontal_flip', 'pcd_vertical_flip', 'transformation_3d_flow',
                     'lidar_aug_matrix')


def refuse_bev_augmentation(batch_data_samples: Sequence[Det3DDataSample]) -> None:
    """Refuse samples that went through a stock LiDAR-frame augmentation.

    ``GlobalRotScaleTrans`` / ``RandomFlip3D`` move the boxes but not the
    camera geometry (``lidar2cam``) the view transformer lifts with, so the
    BEV features and the targets would disagree. ``BEVDetBEVAug`` (BEVDet's
    BEV data augmentation) moves both.

    Raises:
        ValueError: If a sample's metainfo carries one of
            :data:`BEV_AUG_META_KEYS` (the configs pack them when present).
    """
    for i, sample in enumerate(batch_data_samples):
        found = [k for k in BEV_AUG_META_KEYS if k in sample.metainfo]
        if found:
            raise ValueError(
                f'BEVDetCompat: data sample {i} went through a LiDAR-frame augmentation '
                f'({found}): GlobalRotScaleTrans / RandomFlip3D move the boxes but not the '
                'camera geometry the view transformer lifts with, so features and targets '
                'disagree. Use BEVDetBEVAug (BEVDet\'s BEV data augmentation, which moves both) '
                'instead; see projects/BEVDetCompat/README.md')


#: BEVDet's image encoder, in forward order: config names and attribute names
#: (official BEVDet's, the checkpoint key prefixes).
BEVDET_ENCODER_KEYS = ('img_backbone', 'img_neck', 'img_view_transformer',
                       'img_bev_encoder_backbone', 'img_bev_encoder_neck')


@MODELS.register_module()
class BEVDetCompat(Base3DDetector):
    """BEVDet (Huang et al. 2021) assembled from registered mmdet3d 1.x parts.

    images -> ``img_backbone`` -> ``img_neck`` -> ``img_view_transformer``
    (LSS lift + BEV pooling) -> ``img_bev_encoder_backbone`` ->
    ``img_bev_encoder_neck`` -> ``pts_bbox_head`` (stock ``CenterHead``).
    The attribute names are official BEVDet's, so its checkpoints (and ours)
    load into the image side with ``strict=True``.

    Args:
        img_backbone (dict): Image backbone, e.g. ``mmdet.ResNet``.
        img_neck (dict): Image neck, e.g. ``BEVDetCustomFPN``.
        img_view_transformer (dict): ``BEVDetLSSViewTransformer``.
        img_bev_encoder_backbone (dict): ``BEVDetCustomResNet``.
        img_bev_encoder_neck (dict): ``BEVDetFPNLSS``.
        pts_bbox_head (dict): ``CenterHead``; receives ``train_cfg.pts`` and
            ``test_cfg.pts`` as MVXTwoStageDetector does.
        train_cfg (dict, optional): ``dict(pts=...)`` CenterHead targets.
        test_cfg (dict, optional): ``dict(pts=...)`` CenterHead decoding.
        data_preprocessor (dict, optional): ``Det3DDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 img_backbone: ConfigType,
                 img_neck: ConfigType,
                 img_view_transformer: ConfigType,
                 img_bev_encoder_backbone: ConfigType,
                 img_bev_encoder_neck: ConfigType,
                 pts_bbox_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._build_image_encoder(
            'BEVDetCompat', img_backbone=img_backbone, img_neck=img_neck,
            img_view_transformer=img_view_transformer,
            img_bev_encoder_backbone=img_bev_encoder_backbone,
            img_bev_encoder_neck=img_bev_encoder_neck)
        head_cfg = dict(pts_bbox_head)
        head_cfg.update(train_cfg=train_cfg.get('pts') if train_cfg else None,
                        test_cfg=test_cfg.get('pts') if test_cfg else None)
        self.pts_bbox_head = MODELS.build(head_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def _build_image_encoder(self, owner: str, **encoders: ConfigType) -> None:
        """Build the image side under official BEVDet's attribute names.

        Args:
            owner (str): Class named in the errors (e.g. ``'BEVDetSeg'``).
            **encoders (dict): One config per name of
                :data:`BEVDET_ENCODER_KEYS`, all required.

        Raises:
            TypeError: A name missing (or None) or not in
                :data:`BEVDET_ENCODER_KEYS`.
        """
        unknown = sorted(set(encoders) - set(BEVDET_ENCODER_KEYS))
        missing = [key for key in BEVDET_ENCODER_KEYS if encoders.get(key) is None]
        if unknown or missing:
            raise TypeError(f'{owner}: BEVDet encoder configs {missing} missing, {unknown} '
                            f'unknown; the encoder configs are {list(BEVDET_ENCODER_KEYS)}')
        for key in BEVDET_ENCODER_KEYS:
            setattr(self, key, MODELS.build(encoders[key]))

    def extract_img_feat(self, imgs: Tensor) -> Tensor:
        """Image backbone + neck on every view.

        Args:
            imgs (Tensor): (B, N_cam, 3, H_in, W_in) normalised images.

        Returns:
            Tensor: (B, N_cam, C_img, H_in / s, W_in / s), the neck's first
            output (stride s = 16 for BEVDet-R50).
        """
        if imgs.dim() != 5:
            raise ValueError('BEVDetCompat expects inputs["imgs"] of shape (B, N_cam, 3, H, W), '
                             f'got {tuple(imgs.shape)}')
        b, n = imgs.shape[:2]
        feats = self.img_neck(self.img_backbone(imgs.flatten(0, 1)))
        feat = feats[0] if isinstance(feats, (list, tuple)) else feats
        return feat.unflatten(0, (b, n))

    @staticmethod
    def lift_matrices(batch_data_samples: Sequence[Det3DDataSample],
                      like: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Matrices the view transformer lifts with, BEV augmentation included.

        ``cam2lidar = bda @ inv(lidar2cam)``: the frustum points land in the
        augmented lidar frame of the boxes (``BEVDetBEVAug`` writes the (3, 3)
        ``bda_matrix``; absent = identity), as official BEVDet applies ``bda``
        to its geometry.

        Args:
            batch_data_samples (Sequence[Det3DDataSample]): B samples.
            like (Tensor): Device / dtype of the results.

        Returns:
            tuple[Tensor]: cam2img, cam2lidar, img_aug_matrix, each
            (B, N_cam, 4, 4).
        """
        cam2img = stack_view_matrices(batch_data_samples, 'cam2img', like)
        lidar2cam = stack_view_matrices(batch_data_samples, 'lidar2cam', like)
        img_aug = stack_view_matrices(batch_data_samples, 'img_aug_matrix', like)
        if not cam2img.shape[:2] == lidar2cam.shape[:2] == img_aug.shape[:2]:
            raise ValueError(f'BEVDetCompat: cam2img {tuple(cam2img.shape[:2])}, lidar2cam '
                             f'{tuple(lidar2cam.shape[:2])}, img_aug_matrix '
                             f'{tuple(img_aug.shape[:2])} (B, N_cam) differ')
        bda = like.new_zeros(len(batch_data_samples), 4, 4)
        bda[:] = torch.eye(4, dtype=like.dtype, device=like.device)
        for i, sample in enumerate(batch_data_samples):
            if 'bda_matrix' in sample.metainfo:
                mat = np.asarray(sample.metainfo['bda_matrix'], dtype=np.float64)
                if mat.shape != (3, 3):
                    raise ValueError(f'BEVDetCompat: data sample {i} bda_matrix must be (3, 3), '
                                     f'got {mat.shape}')
                bda[i, :3, :3] = like.new_tensor(mat)
        return cam2img, bda[:, None] @ torch.linalg.inv(lidar2cam), img_aug

    def extract_feat(self, batch_inputs_dict: dict,
                     batch_data_samples: Sequence[Det3DDataSample]) -> Tuple[List[Tensor], Tensor]:
        """Images to the BEV map the head reads.

        Args:
            batch_inputs_dict (dict): ``imgs`` (B, N_cam, 3, H_in, W_in).
            batch_data_samples (Sequence[Det3DDataSample]): meta keys
                ``cam2img`` (camera -> image pixels), ``lidar2cam`` (lidar ->
                camera, metres) and ``img_aug_matrix`` (original -> input
                pixels), N_cam of each.

        Raises:
            ValueError: If a sample went through GlobalRotScaleTrans /
                RandomFlip3D (:func:`refuse_bev_augmentation`).

        Returns:
            tuple: ``[bev]`` with bev (B, C_head, N_y, N_x) in the lidar frame
            (rows along y, columns along x), and the depth distribution
            (B, N_cam, D, H_f, W_f).
        """
        refuse_bev_augmentation(batch_data_samples)
        if 'imgs' not in batch_inputs_dict:
            raise KeyError('BEVDetCompat needs batch_inputs_dict["imgs"] (pack "img" with '
                           'Pack3DDetInputs)')
        imgs = batch_inputs_dict['imgs']
        cam2img, cam2lidar, img_aug = self.lift_matrices(
            batch_data_samples, imgs.new_empty(0, dtype=torch.float32))
        if not cam2img.shape[:2] == imgs.shape[:2]:
            raise ValueError(f'BEVDetCompat: images {tuple(imgs.shape[:2])} (B, N_cam) but '
                             f'the camera matrices are {tuple(cam2img.shape[:2])}')
        img_feat = self.extract_img_feat(imgs)
        bev, depth = self.img_view_transformer(img_feat, cam2img, cam2lidar, img_aug)
        bev = self.img_bev_encoder_neck(self.img_bev_encoder_backbone(bev))
        return [bev], depth

    def loss(self, batch_inputs_dict: dict,
             batch_data_samples: List[Det3DDataSample], **kwargs) -> Dict[str, Tensor]:
        """CenterHead losses (heatmap focal loss and box L1 per task).

        Returns:
            dict[str, Tensor]: Scalar losses named ``task{i}.loss_heatmap`` /
            ``task{i}.loss_bbox``.
        """
        bev_feats, _ = self.extract_feat(batch_inputs_dict, batch_data_samples)
        return self.pts_bbox_head.loss(bev_feats, batch_data_samples)

    def predict(self, batch_inputs_dict: dict,
                batch_data_samples: List[Det3DDataSample], **kwargs) -> List[Det3DDataSample]:
        """Detect boxes.

        Returns:
            list[Det3DDataSample]: The input samples with ``pred_instances_3d``
            (``bboxes_3d`` LiDARInstance3DBoxes with 9-dim boxes incl. velocity,
            ``scores_3d``, ``labels_3d``) as NuScenesMetric reads them.
        """
        bev_feats, _ = self.extract_feat(batch_inputs_dict, batch_data_samples)
        results = self.pts_bbox_head.predict(bev_feats, batch_data_samples)
        return self.add_pred_to_datasample(batch_data_samples, data_instances_3d=results)

    def _forward(self, batch_inputs_dict: dict,
                 batch_data_samples: Optional[List[Det3DDataSample]] = None,
                 **kwargs) -> Tuple[List[dict], ...]:
        """Raw CenterHead outputs (per task: heatmap, reg, height, dim, rot, vel maps)."""
        if batch_data_samples is None:
            raise ValueError('BEVDetCompat._forward needs data samples: the view transformer '
                             'reads cam2img / lidar2cam / img_aug_matrix from their metainfo')
        bev_feats, _ = self.extract_feat(batch_inputs_dict, batch_data_samples)
        return self.pts_bbox_head(bev_feats)
