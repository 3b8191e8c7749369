"""Lift multi-view image features of one frame into a 3D voxel volume (LSS)."""
from typing import Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.camera_geometry import create_frustum, frustum_to_lidar
from render_pretrain.grid import VoxelGrid
from render_pretrain.voxel_pooling import pool_frustum_to_grid


@MODELS.register_module()
class MIM4DVolumeTransform(BaseModule):
    """Depth distribution x context features, pooled into a dense voxel volume.

    Per camera: optional 1x1 ``input_proj`` -> ``depthnet`` (one 1x1 conv
    giving D depth logits then C context channels, the layout of BEVDet's
    ``img_view_transformer.depthnet`` and BEVFusion's ``LSSTransform``
    ``depthnet``, so it transfers by name) -> outer product softmax(depth) x
    context on the frustum -> frustum points mapped into the FRAME's own
    LiDAR frame (``cam2frame``) -> summed into the voxels of the unified
    grid (:func:`render_pretrain.voxel_pooling.pool_frustum_to_grid`, no
    CUDA op) -> ``volume_proj`` to ``out_channels`` (MIM4D: 32): Conv3d
    (kernel 3, padding 1) + BatchNorm3d + ReLU, the released ``render_conv``
    (applied to every sweep's volume before the temporal predictor and the
    render head).

    Grid constants (the frustum) are non-persistent buffers; the volume's
    grid is one :class:`render_pretrain.grid.VoxelGrid` (``grid``), whose
    :attr:`~render_pretrain.grid.VoxelGrid.aabb` is the render head's box.

    Args:
        in_channels (int): Channels of the neck output.
        context_channels (int): C, context channels of the depth net.
        out_channels (int): Channels of the returned volume (MIM4D: 32).
        image_size (Sequence[int]): (H, W) network input, pixels.
        feature_size (Sequence[int]): (h, w) neck output.
        dbound (Sequence[float]): (dmin, dmax, step) of the depth bins, metres.
        point_cloud_range (Sequence[float]): Grid box (x_min, y_min, z_min,
            x_max, y_max, z_max), metres, frame's LiDAR frame.
        grid_shape (Sequence[int]): (X, Y, Z) voxels (paper: 180, 180, 5).
        input_proj_channels (int, optional): Add a 1x1 ``input_proj`` conv to
            this many channels before the depth net (UVTR/UniPAD layout).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 context_channels: int,
                 out_channels: int,
                 image_size: Sequence[int],
                 feature_size: Sequence[int],
                 dbound: Sequence[float],
                 point_cloud_range: Sequence[float],
                 grid_shape: Sequence[int],
                 input_proj_channels: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.grid = VoxelGrid.from_range_and_shape(point_cloud_range, grid_shape)
        self.image_size = tuple(int(v) for v in image_size)
        self.feature_size = tuple(int(v) for v in feature_size)
        self.point_cloud_range = list(self.grid.point_cloud_range)
        self.grid_shape = list(self.grid.shape)
        self.voxel_size = list(self.grid.voxel_size)
        self.register_buffer('frustum', create_frustum(self.image_size, self.feature_size,
                                                       dbound), persistent=False)
        self.num_depth = self.frustum.shape[0]
        self.context_channels = int(context_channels)
        self.input_proj = (nn.Conv2d(in_channels, input_proj_channels, 1)
                           if input_proj_channels else None)
        depth_in = input_proj_channels or in_channels
        self.depthnet = nn.Conv2d(depth_in, self.num_depth + self.context_channels, 1)
        self.volume_proj = nn.Sequential(
            nn.Conv3d(self.context_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True))

    def forward(self, feats: Tensor, cam2img: Tensor, cam2frame: Tensor,
                img_aug_matrix: Tensor) -> dict:
        """Lift the cameras of M frames into M volumes.

        Args:
            feats (Tensor): (M, N_cam, C_in, h, w) neck features of M frames
                (e.g. M = B x S sweeps flattened).
            cam2img (Tensor): (M, N_cam, 4, 4) intrinsics (original pixels).
            cam2frame (Tensor): (M, N_cam, 4, 4) camera -> the frame's own
                LiDAR frame, metres.
            img_aug_matrix (Tensor): (M, N_cam, 4, 4) original -> augmented
                pixels.

        Returns:
            dict: ``volume`` (M, out_channels, Z, Y, X) in the frame's LiDAR
            frame over ``point_cloud_range`` and ``depth`` (M, N_cam, D, h, w)
            depth probabilities.
        """
        num_frames, num_cams = feats.shape[:2]
        if tuple(feats.shape[-2:]) != self.feature_size:
            raise ValueError(f'neck features are {tuple(feats.shape[-2:])}, but the view '
                             f'transform was configured with feature_size={self.feature_size} '
                             f'(image_size={self.image_size})')
        x = feats.flatten(0, 1)
        if self.input_proj is not None:
            x = self.input_proj(x)
        x = self.depthnet(x)
        depth = x[:, :self.num_depth].softmax(dim=1)
        context = x[:, self.num_depth:]
        # (M * N, D, C, h, w) -> (M, N, D, h, w, C)
        lifted = depth.unsqueeze(2) * context.unsqueeze(1)
        lifted = lifted.view(num_frames, num_cams, self.num_depth, self.context_channels,
                             *self.feature_size).permute(0, 1, 2, 4, 5, 3)
        geometry = frustum_to_lidar(self.frustum.to(feats.dtype), cam2img, cam2frame,
                                    img_aug_matrix)
        volume = pool_frustum_to_grid(lifted, geometry, self.grid.lower,
                                      self.grid.voxel_size, self.grid.shape)
        return dict(volume=self.volume_proj(volume),
                    depth=depth.view(num_frames, num_cams, self.num_depth, *self.feature_size))
