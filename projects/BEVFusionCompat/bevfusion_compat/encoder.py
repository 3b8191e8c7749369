"""BEVFusion's encoder stages over the stock attribute names (shared encoder logic).

:class:`BEVFusionEncoderMixin` builds and runs the camera branch (backbone,
neck, LSS view transform), the LiDAR branch (voxel encoder, sparse encoder)
and the fuser with the attribute names of the stock BEVFusion detector, so
checkpoint keys are the stock ones. The NS-MAE pre-training detector (which
corrupts the inputs) and the BEV segmentation detector (which does not) use it.
"""
import contextlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from spconv.pytorch.conv import SparseConvolution
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from render_pretrain.camera_geometry import compose_lidar2img, render_depth_map_from_points
from render_pretrain.grid import conv_output_shape
from render_pretrain.sample_batching import pack_points, stack_sample_meta

from .sparse_encoder import sparse_encoder_axes


@contextlib.contextmanager
def _single_value_batch_norm_uses_running_stats(*modules: nn.Module) -> Iterator[None]:
    """Let the BatchNorm layers of ``modules`` take one value per channel.

    A heavily masked sparse frame can leave one kept voxel, or one active
    site after a strided sparse conv; in training a BatchNorm then has a
    single value per channel and torch raises "Expected more than 1 value
    per channel". Within this context such a layer normalises that input
    with its running statistics (as in eval mode; they are not updated from
    one value) and every other input as usual.
    """
    def before(module, inputs):
        if module.training and inputs[0].numel() <= inputs[0].shape[1]:
            module.training = False
            module._single_value_eval = True

    def after(module, inputs, output):
        if getattr(module, '_single_value_eval', False):
            module.training = True
            del module._single_value_eval

    handles = []
    for owner in modules:
        for module in owner.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and \
                    module.track_running_stats:
                handles += [module.register_forward_pre_hook(before),
                            module.register_forward_hook(after)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


#: The encoder configs of mmdet3d's BEVFusion, which are also its attribute names
#: (checkpoint key prefixes), in the order they are built.
BEVFUSION_ENCODER_KEYS = ('img_backbone', 'img_neck', 'view_transform', 'pts_voxel_encoder',
                          'pts_middle_encoder', 'fusion_layer')


def build_optional(cfg: Optional[dict]):
    """Build a module from its config, or return None for a None config."""
    return MODELS.build(cfg) if cfg is not None else None


class BEVFusionEncoderMixin:
    """BEVFusion's encoder stages over the stock attribute names.

    Shared by the NS-MAE pre-training detector (which corrupts the inputs)
    and the downstream detectors of ``projects/BEVSeg`` (which do not):
    building and checking the branches (``img_backbone``, ``img_neck``,
    ``view_transform``, ``pts_voxel_encoder``, ``pts_middle_encoder``,
    ``fusion_layer``), the camera matrices from the data samples, the image
    encoder + view transform, the LiDAR encoder and the fuser, and
    :meth:`encode_bev`, the plain (unmasked) BEVFusion encoding. The host
    class is a :class:`Base3DDetector` and sets ``lidar_frozen``.
    """

    lidar_frozen = False

    def _build_bevfusion_encoders(self, owner: str, **encoders: Optional[dict]) -> None:
        """Check the branch configs and build them under the stock names.

        Args:
            owner (str): Class named in the errors (e.g. ``'NSMAE'``).
            **encoders (dict, optional): Configs of the branches, keyed by
                :data:`BEVFUSION_ENCODER_KEYS` (the attribute names of
                mmdet3d's BEVFusion); a key left out or None is no module.

        Raises:
            TypeError: A key outside :data:`BEVFUSION_ENCODER_KEYS`.
            ValueError: A branch is incomplete (e.g. a camera branch
                without ``view_transform``) or there is no branch.
        """
        unknown = sorted(set(encoders) - set(BEVFUSION_ENCODER_KEYS))
        if unknown:
            raise TypeError(f'{owner}: unknown BEVFusion encoder config(s) {unknown}; the '
                            f'encoder configs are {list(BEVFUSION_ENCODER_KEYS)}')
        given = {key for key, cfg in encoders.items() if cfg is not None}
        has_cam, has_pts = 'img_backbone' in given, 'pts_middle_encoder' in given
        if not (has_cam or has_pts):
            raise ValueError(f'{owner} needs img_backbone and/or '
                             'pts_middle_encoder')
        if has_cam and not {'img_neck', 'view_transform'} <= given:
            raise ValueError('the camera branch needs img_neck and '
                             'view_transform')
        if has_cam and has_pts and 'fusion_layer' not in given:
            raise ValueError('camera + LiDAR needs a fusion_layer')
        if has_pts and 'pts_voxel_encoder' not in given:
            raise ValueError('the LiDAR branch needs pts_voxel_encoder')
        for key in BEVFUSION_ENCODER_KEYS:
            setattr(self, key, build_optional(encoders.get(key)))

    @property
    def with_camera(self) -> bool:
        """Whether the camera branch exists."""
        return self.img_backbone is not None

    @property
    def with_lidar(self) -> bool:
        """Whether the LiDAR branch exists."""
        return self.pts_middle_encoder is not None

    def _camera_inputs(self, batch_inputs: dict, data_samples: Sequence[Det3DDataSample]
                       ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """The multi-view images and their camera matrices.

        Args:
            batch_inputs (dict): ``imgs`` [B, N_cam, 3, H, W].
            data_samples (Sequence[Det3DDataSample]): Meta ``cam2img``,
                ``lidar2cam`` and optionally ``img_aug_matrix`` /
                ``lidar_aug_matrix`` (identity when absent).

        Returns:
            tuple: ``imgs`` and the dict of :meth:`_camera_meta`.
        """
        imgs = batch_inputs.get('imgs')
        if imgs is None or imgs.dim() != 5:
            raise ValueError('the camera branch needs batch_inputs["imgs"] '
                             '[B, N_cam, 3, H, W] (multi-view images)')
        return imgs, self._camera_meta(data_samples, imgs, imgs.shape[1])

    @staticmethod
    def _camera_meta(data_samples: Sequence[Det3DDataSample], ref: Tensor, num_cams: int
                     ) -> Dict[str, Tensor]:
        """Camera matrices [B, N_cam, 4, 4] (and lidar_aug [B, 4, 4]) on ``ref``."""
        metas = [sample.metainfo for sample in data_samples]
        cam2img = stack_sample_meta(metas, 'cam2img', ref)
        lidar2cam = stack_sample_meta(metas, 'lidar2cam', ref)
        img_aug = stack_sample_meta(metas, 'img_aug_matrix', ref,
                                    np.tile(np.eye(4), (num_cams, 1, 1)))
        lidar_aug = stack_sample_meta(metas, 'lidar_aug_matrix', ref, np.eye(4))
        if cam2img.shape[1] != num_cams or lidar2cam.shape[1] != num_cams:
            raise ValueError(
                f'{num_cams} images per sample but cam2img '
                f'{tuple(cam2img.shape)} / lidar2cam {tuple(lidar2cam.shape)}')
        return dict(
            cam2img=cam2img,
            lidar2cam=lidar2cam,
            cam2lidar=torch.linalg.inv(lidar2cam),
            img_aug_matrix=img_aug,
            lidar_aug_matrix=lidar_aug,
            lidar2img=compose_lidar2img(cam2img, lidar2cam, img_aug,
                                        lidar_aug))

    def _encode_images(self, img_input: Tensor, depth_in: Tensor, meta: dict):
        """Image backbone + neck + view transform.

        Args:
            img_input (Tensor): [B, N_cam, 3, H, W] normalised images.
            depth_in (Tensor): [B, N_cam, H, W] LiDAR depth map (metres, 0 =
                no point) for ``dtransform``.
            meta (dict): From :meth:`_camera_meta`.

        Returns:
            tuple: camera BEV [B, C, H_bev, W_bev], frustum features
            [B, N_cam, D, h, w, C] and the feature stride (int).
        """
        batch, num_cams, _, img_h, img_w = img_input.shape
        feats = self.img_backbone(img_input.flatten(0, 1))
        feats = self.img_neck(feats)
        if isinstance(feats, (list, tuple)):
            feats = feats[0]
        feats = feats.view(batch, num_cams, *feats.shape[1:])
        cam_bev, frustum_feats = self.view_transform(
            feats, depth_in.unsqueeze(2), meta['cam2img'], meta['cam2lidar'],
            meta['img_aug_matrix'], meta['lidar_aug_matrix'])
        feat_h, feat_w = feats.shape[-2:]
        if img_h % feat_h or img_w % feat_w or img_h // feat_h != img_w // feat_w:
            raise ValueError(f'image {img_h}x{img_w} is not an integer '
                             f'multiple of the feature map {feat_h}x{feat_w}')
        return cam_bev, frustum_feats, img_h // feat_h

    def _extract_lidar(self, voxels: dict, kept: Tensor,
                       batch_size: int) -> Tensor:
        """Encode the kept voxels into a BEV map [B, C, H_bev, W_bev]."""
        if not bool(kept.any()):
            return self._empty_lidar_bev(batch_size, voxels['voxels'])
        frozen = self.lidar_frozen
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen), \
                _single_value_batch_norm_uses_running_stats(self.pts_voxel_encoder,
                                                            self.pts_middle_encoder):
            feats = self.pts_voxel_encoder(voxels['voxels'][kept],
                                           voxels['num_points'][kept],
                                           voxels['coors'][kept])
            return self.pts_middle_encoder(feats, voxels['coors'][kept],
                                           batch_size)

    def _empty_lidar_bev(self, batch_size: int, ref: Tensor) -> Tensor:
        """All-zero LiDAR BEV map when every voxel is masked out.

        spconv cannot run on an empty tensor, so the output size is derived
        from the encoder's ``sparse_shape`` through its strided sparse
        convolutions (:func:`render_pretrain.grid.conv_output_shape`); the
        z layers are stacked into channels and the map is laid out as the
        encoder lays it out: [B, C * Z', X', Y'] (``bev_axes='xy'``,
        :class:`BEVFusionCompatSparseEncoder`, sparse (X, Y, Z)) or
        [B, C * Z', Y', X'] (``'yx'``, stock ``SparseEncoder``, (Z, Y, X)).
        """
        encoder = self.pts_middle_encoder
        shape = tuple(encoder.sparse_shape)
        channels = None
        for module in encoder.modules():
            if isinstance(module, SparseConvolution):
                channels = module.out_channels
                if not module.subm:
                    shape = conv_output_shape(shape, module.kernel_size, module.stride,
                                              module.padding, module.dilation)
        if sparse_encoder_axes(encoder)[0] == 'xyz':
            num_x, num_y, num_z = shape
            size = (channels * num_z, num_x, num_y)
        else:
            num_z, num_y, num_x = shape
            size = (channels * num_z, num_y, num_x)
        return ref.new_zeros((batch_size, ) + size)

    def _fuse(self, bev_maps: List[Tensor]) -> Tensor:
        """Fuse [camera BEV, LiDAR BEV] (or pass a single branch through)."""
        return self.fusion_layer(bev_maps) if len(bev_maps) > 1 else bev_maps[0]

    def encode_bev(self, batch_inputs: dict,
                   data_samples: Sequence[Det3DDataSample],
                   depth_input: str = 'all') -> Tensor:
        """BEVFusion's plain encoding of uncorrupted inputs.

        Args:
            batch_inputs (dict): From ``Det3DDataPreprocessor``: ``imgs``
                [B, N_cam, 3, H, W] (camera branch), ``points`` (list of
                [P_b, C_pt], LiDAR frame, metres) and ``voxels`` (LiDAR
                branch; ``coors`` [M, 4] (batch, z, y, x)).
            data_samples (Sequence[Det3DDataSample]): Metas ``cam2img``,
                ``lidar2cam`` (optionally ``img_aug_matrix``,
                ``lidar_aug_matrix``) for the camera branch.
            depth_input (str): LiDAR depth map fed to ``dtransform``:
                ``'all'`` (every point, BEVFusion's DepthLSSTransform) or
                ``'none'`` (zeros; camera-only models).

        Returns:
            Tensor: Fused BEV map [B, C, H_bev, W_bev] (``bev_axes`` layout
            of the encoders, [B, C, X, Y] for BEVFusion's).
        """
        if depth_input not in ('all', 'none'):
            raise ValueError(f"depth_input must be 'all' or 'none', got {depth_input!r}")
        bev_maps = []
        if self.with_camera:
            imgs, meta = self._camera_inputs(batch_inputs, data_samples)
            batch, num_cams, _, img_h, img_w = imgs.shape
            if depth_input == 'all':
                if 'points' not in batch_inputs:
                    raise KeyError('depth_input="all" needs batch_inputs["points"]: '
                                   'load the LiDAR points in the pipeline')
                xyz, point_batch = pack_points(batch_inputs['points'])
                depth_in = render_depth_map_from_points(
                    xyz, meta['lidar2img'], (img_h, img_w), batch_idx=point_batch)
            else:
                depth_in = imgs.new_zeros((batch, num_cams, img_h, img_w))
            bev_maps.append(self._encode_images(imgs, depth_in, meta)[0])
        if self.with_lidar:
            voxels = batch_inputs.get('voxels')
            if voxels is None:
                raise KeyError('batch_inputs has no "voxels": the data '
                               'preprocessor must voxelise (voxel=True)')
            kept = voxels['coors'].new_ones(voxels['coors'].shape[0], dtype=torch.bool)
            bev_maps.append(self._extract_lidar(voxels, kept, len(batch_inputs['points'])))
        return self._fuse(bev_maps)
