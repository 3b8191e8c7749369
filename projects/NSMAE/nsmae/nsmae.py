"""NS-MAE pre-training detector: masked camera + LiDAR encoder, rendered."""
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement
from torch import Tensor

from mmdet3d.models import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from render_pretrain.camera_geometry import render_depth_map_from_points
from render_pretrain.bev_targets import bev_first_hit_target
from render_pretrain.grid import VoxelGrid, check_bev_axes
from render_pretrain.image_normalization import images_to_unit_range, preprocessor_normalization
from render_pretrain.masking import upsample_patch_mask
from render_pretrain.sample_batching import pack_points
from render_pretrain.seeding import KeyedTorchGenerators
from render_pretrain.voxel_masking import draw_voxel_keep_mask, points_in_kept_voxels

from projects.BEVFusionCompat.bevfusion_compat.encoder import (
    BEVFusionEncoderMixin, build_optional as _build_optional)
from projects.BEVFusionCompat.bevfusion_compat.sparse_encoder import sparse_encoder_axes

LOSS_KEYS = ('rgb', 'pv_depth', 'bev_depth')
#: Meta keys written by mmdet3d's global LiDAR augmentations
#: (``GlobalRotScaleTrans``, ``RandomFlip3D`` and their BEVFusion variants).
LIDAR_AUG_META_KEYS = ('pcd_rotation', 'pcd_scale_factor', 'pcd_trans',
                       'pcd_horizontal_flip', 'pcd_vertical_flip',
                       'transformation_3d_flow')


@MODELS.register_module()
class NSMAE(BEVFusionEncoderMixin, Base3DDetector):
    """NeRF-supervised masked auto-encoder (NS-MAE) pre-training detector.

    The encoder is BEVFusion's, with the stock attribute names
    (``img_backbone``, ``img_neck``, ``view_transform``,
    ``pts_voxel_encoder``, ``pts_middle_encoder``, ``fusion_layer``) so its
    weights transfer by name. Inputs are corrupted, targets are built from
    the uncorrupted data:

    - images: SimMIM patch masking with a learnable token (``img_masker``)
      on the normalised images; target = the unmasked image in [0, 1]
      (denormalised with the data preprocessor's mean/std) area-downsampled
      to the feature stride;
    - LiDAR: ``voxel_mask_ratio`` of the non-empty voxels of the batch are
      dropped before the sparse encoder; target = the first-hit (highest)
      height of the DROPPED voxels per BEV cell;
    - LiDAR depth map fed to the camera branch (``dtransform``): built from
      the points of the kept voxels (``depth_input='masked'``), and zeroed
      in masked image patches when ``mask_depth_in_image_patches``; the PV
      depth target is built from ALL points at the feature stride.

    Each branch is optional: camera-only (no ``pts_middle_encoder``; the
    BEV target then uses all voxels), LiDAR-only (no ``img_backbone``; no
    perspective rendering) and camera + LiDAR (``fusion_layer``).

    Args:
        data_preprocessor (dict): ``Det3DDataPreprocessor`` config with
            ``voxel=True, voxel_type='hard'`` (BEVFusion voxelisation).
        img_backbone, img_neck, view_transform (dict, optional): Camera
            branch (``view_transform`` returns BEV and frustum features).
        pts_voxel_encoder, pts_middle_encoder (dict, optional): LiDAR branch
            (``HardSimpleVFE`` + ``BEVFusionCompatSparseEncoder`` or stock
            ``SparseEncoder``).
        fusion_layer (dict, optional): Fuser, camera BEV first.
        img_masker (dict, optional): ``NSMAEImageMasker`` config (None: no
            image masking).
        voxel_mask_ratio (float): Fraction of non-empty voxels dropped.
        depth_input (str): Points used for the depth map fed to
            ``dtransform``: ``'masked'`` (kept voxels), ``'all'`` or
            ``'none'`` (zeros).
        mask_depth_in_image_patches (bool): Zero the input depth map where
            the image is masked.
        pv_render_head, bev_render_head (dict, optional): Render heads.
        loss_weights (dict): Weights of ``rgb``, ``pv_depth``, ``bev_depth``.
        bev_axes (str): Layout of all BEV maps, ``'xy'`` ([.., X, Y],
            BEVFusion) or ``'yx'`` ([.., Y, X], stock SparseEncoder).
        seed (int, optional): Replaces the run's seed in the key of the
            masking generator (:meth:`generator`).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 data_preprocessor: dict,
                 img_backbone: Optional[dict] = None,
                 img_neck: Optional[dict] = None,
                 view_transform: Optional[dict] = None,
                 pts_voxel_encoder: Optional[dict] = None,
                 pts_middle_encoder: Optional[dict] = None,
                 fusion_layer: Optional[dict] = None,
                 img_masker: Optional[dict] = None,
                 voxel_mask_ratio: float = 0.9,
                 depth_input: str = 'masked',
                 mask_depth_in_image_patches: bool = True,
                 pv_render_head: Optional[dict] = None,
                 bev_render_head: Optional[dict] = None,
                 loss_weights: Optional[dict] = None,
                 bev_axes: str = 'xy',
                 seed: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if depth_input not in ('masked', 'all', 'none'):
            raise ValueError("depth_input must be 'masked', 'all' or 'none', "
                             f'got {depth_input!r}')
        check_bev_axes(bev_axes)
        if not 0.0 <= voxel_mask_ratio <= 1.0:
            raise ValueError('voxel_mask_ratio must be in [0, 1], got '
                             f'{voxel_mask_ratio}')
        if not getattr(self.data_preprocessor, 'voxel', False):
            raise ValueError('NSMAE needs data_preprocessor.voxel=True (hard '
                             'voxelisation): voxels feed the LiDAR branch and '
                             'the BEV target')
        if img_backbone is None and (img_masker is not None
                                     or pv_render_head is not None):
            raise ValueError('img_masker / pv_render_head need the camera '
                             'branch (img_backbone); set them to None')
        self._build_bevfusion_encoders(
            'NSMAE', img_backbone=img_backbone, img_neck=img_neck,
            view_transform=view_transform, pts_voxel_encoder=pts_voxel_encoder,
            pts_middle_encoder=pts_middle_encoder, fusion_layer=fusion_layer)
        self.img_masker = _build_optional(img_masker)
        self.pv_render_head = _build_optional(pv_render_head)
        self.bev_render_head = _build_optional(bev_render_head)
        self.voxel_mask_ratio = voxel_mask_ratio
        if voxel_mask_ratio == 0.0 and self.with_lidar and bev_render_head is not None:
            warnings.warn(
                'NSMAE: voxel_mask_ratio=0 keeps every voxel, so the BEV target (the '
                'dropped voxels) is empty by construction and loss_bev_depth is '
                'identically 0', UserWarning, stacklevel=2)
        self.depth_input = depth_input
        self.mask_depth_in_image_patches = mask_depth_in_image_patches
        weights = dict(rgb=1.0, pv_depth=1.0, bev_depth=1.0)
        weights.update(loss_weights or {})
        unknown = set(weights) - set(LOSS_KEYS)
        if unknown:
            raise KeyError(f'unknown loss_weights keys {sorted(unknown)}; '
                           f'expected {LOSS_KEYS}')
        self.loss_weights = weights
        self.bev_axes = bev_axes
        self._generators = KeyedTorchGenerators(seed)
        if hasattr(self.data_preprocessor, 'generator_fn'):
            # NSMAEDataPreprocessor shuffles the points with the mask generator
            self.data_preprocessor.generator_fn = self.generator
        self.lidar_frozen = False
        layer = self.data_preprocessor.voxel_layer
        #: The voxelisation grid (masking, voxel keys, BEV target).
        self.grid = VoxelGrid.from_range(layer.point_cloud_range, layer.voxel_size)
        self._check_grid_layouts()

    def _check_grid_layouts(self) -> None:
        """The encoders must use the voxel grid and ``bev_axes`` of the detector.

        The BEV target is laid out in ``bev_axes`` from the voxel grid: a
        sparse encoder over another ``sparse_shape`` or a BEV map in the
        other axis order would be compared with a misplaced (for square
        maps: transposed) target without any shape error.
        """
        layouts = {}
        if self.with_lidar:
            order, layouts['pts_middle_encoder'] = sparse_encoder_axes(self.pts_middle_encoder)
            expected = list(self.grid.sparse_shape(order))
            if [int(n) for n in self.pts_middle_encoder.sparse_shape] != expected:
                raise ValueError(
                    f'pts_middle_encoder.sparse_shape {list(self.pts_middle_encoder.sparse_shape)} '
                    f'does not match the voxel grid of data_preprocessor.voxel_layer '
                    f'(point_cloud_range {list(self.grid.point_cloud_range)}, voxel_size '
                    f'{list(self.grid.voxel_size)}): expected {expected} ({order.upper()} order)')
        if self.with_camera and hasattr(self.view_transform, 'bev_axes'):
            layouts['view_transform'] = self.view_transform.bev_axes
        wrong = {name: axes for name, axes in layouts.items() if axes != self.bev_axes}
        if wrong:
            raise ValueError(f"NSMAE bev_axes={self.bev_axes!r} but {wrong} lay their BEV maps "
                             "out otherwise; set the detector's and view_transform's bev_axes "
                             "to the sparse encoder's layout ('xy' for "
                             "BEVFusionCompatSparseEncoder, 'yx' for SparseEncoder)")

    @property
    def point_cloud_range(self) -> List[float]:
        """The voxel grid's box (x0, y0, z0, x1, y1, z1), metres."""
        return list(self.grid.point_cloud_range)

    @property
    def voxel_size(self) -> List[float]:
        """The voxel size (dx, dy, dz), metres."""
        return list(self.grid.voxel_size)

    @property
    def grid_shape(self) -> List[int]:
        """Voxels per axis (X, Y, Z)."""
        return list(self.grid.shape)

    def generator(self) -> torch.Generator:
        """The CPU generator of the current iteration; it draws all masks.

        ``SeededRandomnessHook`` re-derives it before every iteration from
        (run seed, rank, phase, iteration) through :meth:`set_random_key`;
        outside a Runner it is seeded once (``seed`` or torch's global RNG).
        """
        return self._generators.get('cpu')

    def set_random_key(self, seed: int, *keys: int) -> None:
        """Derive the generators from ``(seed, *keys)`` (the model's ``seed`` replaces ``seed``).

        See :class:`render_pretrain.seeding.KeyedTorchGenerators`.
        """
        self._generators.set_key(seed, *keys)

    # ------------------------------------------------------------------ #
    # freezing
    # ------------------------------------------------------------------ #
    def freeze_lidar_encoder(self) -> None:
        """Stop training the LiDAR encoder (released code's intended freeze).

        Sets ``requires_grad=False`` on ``pts_voxel_encoder`` and
        ``pts_middle_encoder`` parameters and keeps them in eval mode (BN
        statistics frozen) also across later ``train()`` calls.
        """
        if not self.with_lidar:
            raise RuntimeError('freeze_lidar_encoder: the model has no LiDAR '
                               'branch')
        for module in (self.pts_voxel_encoder, self.pts_middle_encoder):
            for param in module.parameters():
                param.requires_grad_(False)
            module.eval()
        self.lidar_frozen = True
        MMLogger.get_current_instance().info(
            'NSMAE: LiDAR encoder frozen (requires_grad=False, eval mode)')

    def train(self, mode: bool = True) -> 'NSMAE':
        """Set train/eval mode, keeping a frozen LiDAR encoder in eval."""
        super().train(mode)
        if self.lidar_frozen:
            self.pts_voxel_encoder.eval()
            self.pts_middle_encoder.eval()
        return self

    # ------------------------------------------------------------------ #
    # helpers
    # ------------------------------------------------------------------ #
    def _images_to_unit_range(self, imgs: Tensor) -> Tensor:
        """Undo the preprocessor normalisation: [.., 3, H, W] -> [0, 1]."""
        return images_to_unit_range(imgs, *preprocessor_normalization(self.data_preprocessor))

    @staticmethod
    def _refuse_lidar_augmentation(
            data_samples: Sequence[Det3DDataSample]) -> None:
        """Raise if the pipeline applied a global LiDAR augmentation.

        NS-MAE pre-training (as released) uses none. The camera geometry,
        the PV depth target and the BEV target only follow a LiDAR
        augmentation through a correct ``lidar_aug_matrix``, which stock
        ``GlobalRotScaleTrans`` / ``RandomFlip3D`` do not write (they would
        leave it at identity: silently wrong targets), so any sign of one
        (its meta keys, pack them with ``Pack3DDetInputs(meta_keys=...)``,
        or a non-identity ``lidar_aug_matrix``) is an error.
        """
        for sample in data_samples:
            meta = sample.metainfo
            found = [key for key in LIDAR_AUG_META_KEYS if key in meta]
            aug = meta.get('lidar_aug_matrix')
            if aug is not None and not np.allclose(np.asarray(aug), np.eye(4)):
                found.append('lidar_aug_matrix (not identity)')
            if found:
                raise ValueError(
                    'NSMAE does not support global LiDAR augmentation '
                    '(GlobalRotScaleTrans, RandomFlip3D, ...): the data '
                    f'sample of {meta.get("lidar_path", "?")} has {found}. '
                    'The frustum geometry, PV depth and BEV targets would not '
                    'follow it; remove it from train_pipeline')

    # ------------------------------------------------------------------ #
    # feature extraction (shared by loss / predict / _forward)
    # ------------------------------------------------------------------ #
    def extract_feat(self, batch_inputs: dict,
                     data_samples: Sequence[Det3DDataSample]) -> dict:
        """Mask the inputs, encode them and build the targets.

        Args:
            batch_inputs (dict): From ``Det3DDataPreprocessor``: ``points``
                (list of [P_b, C_pt] tensors, LiDAR frame, metres),
                ``voxels`` (``voxels`` [M, T, C_pt], ``num_points`` [M],
                ``coors`` [M, 4] (batch, z, y, x)) and, with a camera,
                ``imgs`` [B, N_cam, 3, H, W] (normalised).
            data_samples (Sequence[Det3DDataSample]): With the metas
                ``cam2img``, ``lidar2cam`` (and optionally
                ``img_aug_matrix``, ``lidar_aug_matrix``).

        Returns:
            dict: ``bev`` [B, C, H_bev, W_bev] fused BEV features, the masked
            inputs (``img_input``, ``img_mask`` [B, N_cam, H/p, W/p],
            ``kept_voxel_coors``, ``dropped_voxel_coors``,
            ``depth_input`` [B, N_cam, 1, H, W]) and, with a camera,
            ``frustum_feats`` [B, N_cam, D, h, w, C], ``rgb_target``
            [B, N_cam, 3, h, w] and ``depth_target`` [B, N_cam, h, w].
        """
        self._refuse_lidar_augmentation(data_samples)
        points: List[Tensor] = batch_inputs['points']
        voxels = batch_inputs.get('voxels')
        if voxels is None:
            raise KeyError('batch_inputs has no "voxels": the data '
                           'preprocessor must voxelise (voxel=True)')
        batch_size = len(points)
        coors = voxels['coors']
        generator = self.generator()
        dropped = ~draw_voxel_keep_mask(coors.shape[0], self.voxel_mask_ratio,
                                        generator, device=coors.device)
        if not self.with_lidar:
            dropped = torch.ones_like(dropped)
        out = dict(
            kept_voxel_coors=coors[~dropped],
            dropped_voxel_coors=coors[dropped],
            batch_size=batch_size)
        bev_maps = []
        if self.with_camera:
            cam_bev = self._extract_camera(batch_inputs, data_samples, out,
                                           dropped, generator)
            bev_maps.append(cam_bev)
        if self.with_lidar:
            bev_maps.append(self._extract_lidar(voxels, ~dropped, batch_size))
        out['bev'] = self._fuse(bev_maps)
        return out

    def _extract_camera(self, batch_inputs: dict, data_samples, out: dict,
                        dropped: Tensor,
                        generator: torch.Generator) -> Tensor:
        """Camera branch; fills ``out`` with inputs, targets and frustum."""
        imgs, meta = self._camera_inputs(batch_inputs, data_samples)
        batch, num_cams, _, img_h, img_w = imgs.shape
        if self.img_masker is not None:
            img_input, img_mask = self.img_masker(imgs, generator)
            pixel_mask = upsample_patch_mask(img_mask,
                                             self.img_masker.patch_size)
        else:
            img_input = imgs
            img_mask = imgs.new_zeros((batch, num_cams, 1, 1), dtype=torch.bool)
            pixel_mask = imgs.new_zeros((batch, num_cams, img_h, img_w),
                                        dtype=torch.bool)
        xyz, point_batch = pack_points(batch_inputs['points'])
        if self.depth_input == 'none':
            depth_in = imgs.new_zeros((batch, num_cams, img_h, img_w))
        else:
            in_points, in_batch = xyz, point_batch
            if self.depth_input == 'masked':
                keep = points_in_kept_voxels(xyz, point_batch,
                                             out['kept_voxel_coors'], self.grid)
                in_points, in_batch = xyz[keep], point_batch[keep]
            depth_in = render_depth_map_from_points(
                in_points, meta['lidar2img'], (img_h, img_w),
                batch_idx=in_batch)
            if self.mask_depth_in_image_patches:
                depth_in = depth_in.masked_fill(pixel_mask, 0.0)
        cam_bev, frustum_feats, stride = self._encode_images(
            img_input, depth_in, meta)
        feat_h, feat_w = img_h // stride, img_w // stride
        with torch.no_grad():
            rgb_target = F.avg_pool2d(
                self._images_to_unit_range(imgs.flatten(0, 1)), stride)
            depth_target = render_depth_map_from_points(
                xyz, meta['lidar2img'], (img_h, img_w), stride=stride,
                batch_idx=point_batch)
        out.update(
            img_input=img_input,
            img_mask=img_mask,
            depth_input=depth_in.unsqueeze(2),
            frustum_feats=frustum_feats,
            rgb_target=rgb_target.view(batch, num_cams, 3, feat_h, feat_w),
            depth_target=depth_target)
        return cam_bev

    # ------------------------------------------------------------------ #
    # rendering and losses
    # ------------------------------------------------------------------ #
    def _render(self, feats: dict) -> dict:
        """Run the render heads and build the BEV target."""
        rendered = dict()
        if self.pv_render_head is not None:
            rendered['pv'] = self.pv_render_head(feats['frustum_feats'])
        if self.bev_render_head is not None:
            bev = feats['bev']
            rendered['bev'] = self.bev_render_head(bev)
            height, valid = self._bev_target(feats['dropped_voxel_coors'],
                                             feats['batch_size'],
                                             bev.shape[-2:])
            rendered['bev_target'] = dict(height=height.to(bev.dtype),
                                          valid=valid)
        return rendered

    def _bev_target(self, voxel_coors: Tensor, batch_size: int,
                    bev_shape: Sequence[int]):
        """First-hit height of the given voxels per BEV cell.

        :func:`render_pretrain.bev_targets.bev_first_hit_target` over the
        voxel grid (a BEV cell covers ``grid / bev`` voxel columns, e.g.
        8 x 8 for a 1440 grid and a 180 BEV map).

        Args:
            voxel_coors (Tensor): [V, 4] (batch, z, y, x) voxel indices.
            batch_size (int): B.
            bev_shape (Sequence[int]): BEV map size in ``bev_axes`` order.

        Returns:
            tuple[Tensor, Tensor]: height [B, H_bev, W_bev] (metres, LiDAR
            z of the top voxel centre) and valid [B, H_bev, W_bev] bool.
        """
        return bev_first_hit_target(voxel_coors, batch_size, self.grid,
                                    bev_shape, self.bev_axes)

    def loss(self, batch_inputs: dict,
             batch_data_samples: Sequence[Det3DDataSample]
             ) -> Dict[str, Tensor]:
        """Weighted reconstruction losses (each term logged separately).

        Returns:
            dict[str, Tensor]: ``loss_rgb``, ``loss_pv_depth`` (camera) and
            ``loss_bev_depth`` (BEV head), each times its config weight.
        """
        feats = self.extract_feat(batch_inputs, batch_data_samples)
        rendered = self._render(feats)
        losses = dict()
        if 'pv' in rendered:
            losses.update(
                self.pv_render_head.loss(rendered['pv'], feats['rgb_target'],
                                         feats['depth_target']))
        if 'bev' in rendered:
            target = rendered['bev_target']
            losses.update(
                self.bev_render_head.loss(rendered['bev'], target['height'],
                                          target['valid']))
        return {
            name: value * self.loss_weights[name[len('loss_'):]]
            for name, value in losses.items()
        }

    def _forward(self, batch_inputs: dict,
                 batch_data_samples: Sequence[Det3DDataSample]) -> dict:
        """Raw rendered tensors (``pv``, ``bev``, ``bev_target`` dicts)."""
        feats = self.extract_feat(batch_inputs, batch_data_samples)
        return self._render(feats)

    def predict(self, batch_inputs: dict,
                batch_data_samples: Sequence[Det3DDataSample]
                ) -> List[Det3DDataSample]:
        """Render the masked inputs; attach outputs to the data samples.

        Each returned sample gets a field ``render_outputs``
        (:class:`BaseDataElement`) holding, when available:
        ``img_input`` [N_cam, 3, H, W] masked input in [0, 1], ``img_mask``
        [N_cam, H/p, W/p], ``rgb`` / ``rgb_target`` [N_cam, 3, h, w] in
        [0, 1], ``depth`` / ``depth_target`` [N_cam, h, w] metres (target 0
        where no LiDAR), ``bev_height`` / ``bev_target`` / ``bev_valid``
        [H_bev, W_bev] (metres / bool).
        """
        feats = self.extract_feat(batch_inputs, batch_data_samples)
        rendered = self._render(feats)
        per_sample = dict()
        if 'pv' in rendered:
            per_sample.update(
                img_input=self._images_to_unit_range(feats['img_input']),
                img_mask=feats['img_mask'],
                rgb=rendered['pv']['rgb'],
                rgb_target=feats['rgb_target'],
                depth=rendered['pv']['depth'],
                depth_target=feats['depth_target'])
        if 'bev' in rendered:
            per_sample.update(
                bev_height=rendered['bev']['height'],
                bev_target=rendered['bev_target']['height'],
                bev_valid=rendered['bev_target']['valid'])
        for index, sample in enumerate(batch_data_samples):
            sample.render_outputs = BaseDataElement(**{
                name: value[index].detach()
                for name, value in per_sample.items()
            })
        return list(batch_data_samples)
