"""BEVDet's LSS view transformer (lift, splat) in pure PyTorch."""
from typing import Dict, Optional, Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.camera_geometry import create_frustum, frustum_to_lidar
from render_pretrain.grid import VoxelGrid
from render_pretrain.voxel_pooling import pool_frustum_to_grid


@MODELS.register_module()
class BEVDetLSSViewTransformer(BaseModule):
    """Lift image features with a depth distribution and pool them to BEV.

    Same parameters and names as official BEVDet's LSS view transformer
    (``img_view_transformer.depthnet``: one 1x1 conv giving D depth logits
    followed by ``out_channels`` context channels), so its checkpoints load.
    Differs deliberately:

    * the grid constants ``dx``, ``bx``, ``nx`` and ``frustum`` are
      non-persistent buffers (BEVDet stores frozen parameters), so they are
      never read from nor written to a checkpoint: they always follow this
      config (``dx``, ``bx``, ``nx`` derived from one
      :class:`render_pretrain.grid.VoxelGrid`, ``grid``);
    * pooling is a pure-PyTorch scatter-add
      (:func:`render_pretrain.voxel_pooling.pool_frustum_to_grid`) instead
      of BEVDet's CUDA ``bev_pool``: the same sum per cell, except that
      cell indices use ``floor`` where BEVDet truncates toward zero (which
      puts points up to one cell below the grid into cell 0);
    * geometry takes mmdet3d 1.x matrices (``cam2img``, ``cam2lidar``,
      ``img_aug_matrix``) through :mod:`render_pretrain.camera_geometry`.

    Args:
        grid_config (dict): ``x``, ``y``, ``z``: ``[lower, upper, cell]`` of
            the BEV grid in the lidar frame (metres); ``depth``:
            ``[dmin, dmax, step]`` of the depth bins (metres, dmax excluded).
        input_size (Sequence[int]): Network input (H_in, W_in), pixels.
        downsample (int): Stride of the image features. Defaults to 16.
        in_channels (int): Image-feature channels C_img. Defaults to 512.
        out_channels (int): BEV channels C_bev. Defaults to 64.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 grid_config: Dict[str, Sequence[float]],
                 input_size: Sequence[int],
                 downsample: int = 16,
                 in_channels: int = 512,
                 out_channels: int = 64,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        missing = [k for k in ('x', 'y', 'z', 'depth') if k not in grid_config]
        if missing:
            raise KeyError(f'BEVDetLSSViewTransformer: grid_config lacks {missing}; expected '
                           'x, y, z = [lower, upper, cell] and depth = [dmin, dmax, step]')
        img_h, img_w = (int(s) for s in input_size)
        if img_h % downsample or img_w % downsample:
            raise ValueError(f'BEVDetLSSViewTransformer: input_size {(img_h, img_w)} must be '
                             f'divisible by downsample={downsample}')
        self.grid = VoxelGrid.from_bounds(grid_config['x'], grid_config['y'], grid_config['z'])
        for name in ('dx', 'bx', 'nx'):
            self.register_buffer(name, self.grid.to_tensor(name), persistent=False)
        self.register_buffer(
            'frustum',
            create_frustum((img_h, img_w), (img_h // downsample, img_w // downsample),
                           tuple(grid_config['depth'])),
            persistent=False)
        self.grid_lower = self.grid.lower
        self.grid_shape = self.grid.shape
        self.num_depth = self.frustum.shape[0]
        self.out_channels = out_channels
        self.depthnet = nn.Conv2d(in_channels, self.num_depth + out_channels, kernel_size=1)

    def get_geometry(self, cam2img: Tensor, cam2lidar: Tensor, img_aug_matrix: Tensor) -> Tensor:
        """Lidar-frame position of every frustum sample.

        Args:
            cam2img (Tensor): (B, N_cam, 4, 4) camera -> original image pixels.
            cam2lidar (Tensor): (B, N_cam, 4, 4) camera -> lidar, metres.
            img_aug_matrix (Tensor): (B, N_cam, 4, 4) original -> input pixels.

        Returns:
            Tensor: (B, N_cam, D, H_f, W_f, 3) points (x, y, z), lidar frame, metres.
        """
        return frustum_to_lidar(self.frustum.to(cam2lidar.dtype), cam2img, cam2lidar,
                                img_aug_matrix)

    def get_cam_feats(self, img_feat: Tensor) -> Tuple[Tensor, Tensor]:
        """Depth distribution and its outer product with the context features.

        Args:
            img_feat (Tensor): (B, N_cam, C_img, H_f, W_f).

        Returns:
            tuple[Tensor, Tensor]: depth (B, N_cam, D, H_f, W_f), softmax over
            D (sums to 1); volume (B, N_cam, D, H_f, W_f, C_bev) = depth x context.
        """
        b, n, _, h, w = img_feat.shape
        if (h, w) != tuple(self.frustum.shape[1:3]):
            raise ValueError(f'BEVDetLSSViewTransformer: image features are {h}x{w} but the '
                             f'frustum expects {tuple(self.frustum.shape[1:3])} '
                             '(input_size / downsample)')
        x = self.depthnet(img_feat.flatten(0, 1)).unflatten(0, (b, n))
        depth = x[:, :, :self.num_depth].softmax(dim=2)
        context = x[:, :, self.num_depth:]
        volume = depth.unsqueeze(3) * context.unsqueeze(2)  # (B, N, D, C, H, W)
        return depth, volume.permute(0, 1, 2, 4, 5, 3)

    def bev_pool(self, geom: Tensor, volume: Tensor) -> Tensor:
        """Sum the frustum features falling in each BEV cell (splat).

        Args:
            geom (Tensor): (B, N_cam, D, H_f, W_f, 3) lidar-frame points, metres.
            volume (Tensor): (B, N_cam, D, H_f, W_f, C_bev) features.

        Returns:
            Tensor: (B, N_z * C_bev, N_y, N_x) BEV map (rows along y, columns
            along x, height slices stacked into channels as BEVDet does);
            a point falls in cell ``floor((p - lower) / cell)``, points
            outside the grid are dropped.
        """
        return pool_frustum_to_grid(
            volume, geom, grid_lower=self.grid.lower, voxel_size=self.grid.voxel_size,
            grid_shape=self.grid.shape, collapse_z='concat')

    def forward(self, img_feat: Tensor, cam2img: Tensor, cam2lidar: Tensor,
                img_aug_matrix: Tensor) -> Tuple[Tensor, Tensor]:
        """Lift, splat.

        Args:
            img_feat (Tensor): (B, N_cam, C_img, H_f, W_f) image features.
            cam2img (Tensor): (B, N_cam, 4, 4) intrinsics, pixels.
            cam2lidar (Tensor): (B, N_cam, 4, 4) camera -> lidar, metres.
            img_aug_matrix (Tensor): (B, N_cam, 4, 4) original -> input pixels.

        Returns:
            tuple[Tensor, Tensor]: BEV map (B, C_bev * N_z, N_y, N_x) and the
            depth distribution (B, N_cam, D, H_f, W_f).
        """
        depth, volume = self.get_cam_feats(img_feat)
        geom = self.get_geometry(cam2img, cam2lidar, img_aug_matrix)
        return self.bev_pool(geom, volume), depth
