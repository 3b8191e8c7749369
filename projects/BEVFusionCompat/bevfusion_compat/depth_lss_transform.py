"""BEVFusion-compatible LSS view transform that also returns frustum features."""
from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.camera_geometry import create_frustum, frustum_to_lidar
from render_pretrain.grid import VoxelGrid, check_bev_axes
from render_pretrain.voxel_pooling import pool_frustum_to_grid


@MODELS.register_module()
class BEVFusionCompatDepthLSSTransform(nn.Module):
    """LSS view transform with a LiDAR-depth prior (BEVFusion DepthLSS).

    Same parameters as BEVFusion's ``DepthLSSTransform``: ``dtransform``
    (sparse LiDAR depth map -> 64 channels at the feature stride),
    ``depthnet`` (image features + depth features -> D depth logits and C
    context channels) and ``downsample`` (identity, or three 3x3 convs with
    stride 2 in the middle when ``downsample == 2``).

    Differences from the stock module:

    - the grid constants ``frustum``, ``dx``, ``bx``, ``nx`` are
      non-persistent buffers (never saved in, nor loaded from, a checkpoint)
      derived from one :class:`render_pretrain.grid.VoxelGrid` (``grid``);
    - BEV pooling is pure PyTorch (``render_pretrain.voxel_pooling``), sum
      of the frustum features falling in each BEV cell;
    - :meth:`forward` also returns the perspective frustum features
      [B, N_cam, D, h, w, C] used by the NS-MAE perspective render head.

    BEV layout: with ``bev_axes='xy'`` (default, the stock BEVFusion layout)
    the map is [B, C * nz, nx, ny]: rows follow the LiDAR X axis and columns
    the Y axis, matching :class:`BEVFusionCompatSparseEncoder`. ``bev_axes='yx'``
    transposes it to [B, C * nz, ny, nx] (rows along Y), the layout of
    mmdet3d's stock ``SparseEncoder``/CenterPoint.

    Args:
        in_channels (int): Image feature channels.
        out_channels (int): Context channels C per frustum sample.
        image_size (Sequence[int]): Network input (H, W), pixels.
        feature_size (Sequence[int]): Feature map (h, w); H/h = W/w = 8.
        xbound, ybound, zbound (Sequence[float]): BEV grid (min, max, step)
            in metres along the LiDAR X, Y, Z axes.
        dbound (Sequence[float]): Depth bins (min, max, step), metres.
        downsample (int): 1 or 2, BEV downsampling after pooling.
        bev_axes (str): ``'xy'`` or ``'yx'`` (see above).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 image_size: Sequence[int],
                 feature_size: Sequence[int],
                 xbound: Sequence[float],
                 ybound: Sequence[float],
                 zbound: Sequence[float],
                 dbound: Sequence[float],
                 downsample: int = 1,
                 bev_axes: str = 'xy') -> None:
        super().__init__()
        check_bev_axes(bev_axes)
        if downsample not in (1, 2):
            raise ValueError(f'downsample must be 1 or 2, got {downsample}')
        self.in_channels = in_channels
        self.image_size = tuple(int(v) for v in image_size)
        self.feature_size = tuple(int(v) for v in feature_size)
        self.dbound = tuple(float(v) for v in dbound)
        self.bev_axes = bev_axes
        self.grid = VoxelGrid.from_bounds(xbound, ybound, zbound)
        for name in ('dx', 'bx', 'nx'):
            self.register_buffer(name, self.grid.to_tensor(name), persistent=False)
        self.register_buffer(
            'frustum',
            create_frustum(self.image_size, self.feature_size, self.dbound),
            persistent=False)
        self.D = self.frustum.shape[0]
        self.C = out_channels
        self.dtransform = nn.Sequential(
            nn.Conv2d(1, 8, 1),
            nn.BatchNorm2d(8),
            nn.ReLU(True),
            nn.Conv2d(8, 32, 5, stride=4, padding=2),
            nn.BatchNorm2d(32),
            nn.ReLU(True),
            nn.Conv2d(32, 64, 5, stride=2, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(True),
        )
        self.depthnet = nn.Sequential(
            nn.Conv2d(in_channels + 64, in_channels, 3, padding=1),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(True),
            nn.Conv2d(in_channels, in_channels, 3, padding=1),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(True),
            nn.Conv2d(in_channels, self.D + self.C, 1),
        )
        if downsample == 2:
            self.downsample = nn.Sequential(
                nn.Conv2d(out_channels, out_channels, 3, padding=1,
                          bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(True),
                nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1,
                          bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(True),
                nn.Conv2d(out_channels, out_channels, 3, padding=1,
                          bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(True),
            )
        else:
            self.downsample = nn.Identity()

    def get_cam_feats(self, img_feats: Tensor, depth_map: Tensor) -> Tensor:
        """Lift image features to frustum features.

        Args:
            img_feats (Tensor): [B, N_cam, C_in, h, w] image features.
            depth_map (Tensor): [B, N_cam, 1, H, W] sparse LiDAR depth in
                metres at input resolution (0 where no point).

        Returns:
            Tensor: Frustum features [B, N_cam, D, h, w, C]: the softmax
            depth distribution times the context features.
        """
        batch, num_cams, channels, feat_h, feat_w = img_feats.shape
        if (feat_h, feat_w) != self.feature_size:
            raise ValueError(
                f'image features are {feat_h}x{feat_w}, the view transform '
                f'was configured with feature_size={self.feature_size}')
        depth_feats = self.dtransform(depth_map.flatten(0, 1))
        x = self.depthnet(
            torch.cat([depth_feats, img_feats.flatten(0, 1)], dim=1))
        depth = x[:, :self.D].softmax(dim=1)
        context = x[:, self.D:self.D + self.C]
        frustum_feats = depth.unsqueeze(1) * context.unsqueeze(2)
        frustum_feats = frustum_feats.view(batch, num_cams, self.C, self.D,
                                           feat_h, feat_w)
        return frustum_feats.permute(0, 1, 3, 4, 5, 2)

    def get_geometry(self, cam2img: Tensor, cam2lidar: Tensor,
                     img_aug_matrix: Tensor,
                     lidar_aug_matrix: Tensor) -> Tensor:
        """LiDAR-frame position of every frustum sample.

        Args:
            cam2img (Tensor): [B, N_cam, 3|4, 3|4] intrinsics.
            cam2lidar (Tensor): [B, N_cam, 4, 4] camera -> LiDAR, metres.
            img_aug_matrix (Tensor): [B, N_cam, 4, 4] image augmentation.
            lidar_aug_matrix (Tensor): [B, 4, 4] LiDAR augmentation.

        Returns:
            Tensor: [B, N_cam, D, h, w, 3] points (augmented LiDAR frame,
            metres).
        """
        return frustum_to_lidar(self.frustum, cam2img, cam2lidar,
                                img_aug_matrix, lidar_aug_matrix)

    def bev_pool(self, geometry: Tensor, frustum_feats: Tensor) -> Tensor:
        """Sum frustum features into the BEV grid.

        Args:
            geometry (Tensor): [B, N_cam, D, h, w, 3] points, metres.
            frustum_feats (Tensor): [B, N_cam, D, h, w, C].

        Returns:
            Tensor: [B, C * nz, nx, ny] (``bev_axes='xy'``) or
            [B, C * nz, ny, nx] (``'yx'``).
        """
        return pool_frustum_to_grid(
            frustum_feats,
            geometry,
            grid_lower=self.grid.lower,
            voxel_size=self.grid.voxel_size,
            grid_shape=self.grid.shape,
            collapse_z='concat',
            bev_axes=self.bev_axes)

    def forward(self, img_feats: Tensor, depth_map: Tensor, cam2img: Tensor,
                cam2lidar: Tensor, img_aug_matrix: Tensor,
                lidar_aug_matrix: Tensor) -> Tuple[Tensor, Tensor]:
        """Lift, splat (and downsample) image features.

        Args:
            img_feats (Tensor): [B, N_cam, C_in, h, w].
            depth_map (Tensor): [B, N_cam, 1, H, W] LiDAR depth, metres.
            cam2img, cam2lidar, img_aug_matrix, lidar_aug_matrix: see
                :meth:`get_geometry`.

        Returns:
            tuple[Tensor, Tensor]: BEV features [B, C * nz, X', Y'] (or
            [B, C * nz, Y', X'] with ``bev_axes='yx'``) after
            ``downsample``, and frustum features [B, N_cam, D, h, w, C].
        """
        if tuple(depth_map.shape[-2:]) != self.image_size:
            raise ValueError(
                f'depth map / input images are {tuple(depth_map.shape[-2:])}, '
                f'the view transform was configured with image_size='
                f'{self.image_size} (check the pipeline final_dim and the '
                'data preprocessor pad_size_divisor)')
        frustum_feats = self.get_cam_feats(img_feats, depth_map)
        geometry = self.get_geometry(cam2img, cam2lidar, img_aug_matrix,
                                     lidar_aug_matrix)
        bev = self.bev_pool(geometry, frustum_feats)
        return self.downsample(bev), frustum_feats
