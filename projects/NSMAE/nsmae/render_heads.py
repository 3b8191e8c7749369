"""NS-MAE render heads: perspective RGB-D and BEV first-hit height."""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.reconstruction_losses import masked_l1, masked_mse
from render_pretrain.volume_rendering import (bin_centres, render_bev_height,
                                              render_depth_bins)


@MODELS.register_module()
class NSMAEPerspectiveRenderHead(BaseModule):
    """Render RGB and depth per camera from LSS frustum features.

    One 1x1 conv, ``Conv2d(C, 4, 1)`` shared by all depth bins, maps the
    frustum feature of every (bin, pixel) to a density and an RGB colour
    (output channel 0: density, 1..3: colour): the released NS-MAE design,
    applied to the frustum reshaped to [B * N_cam * D, C, h, w], so a bin's
    density and colour come from that bin's feature only and rendering stays
    tied to the LSS depth distribution (the released code then reshaped the
    channels so that colour and density interleave across bins; here each
    bin keeps its own four channels). The colours go through a sigmoid;
    NeRF alpha compositing along the pixel's ray over the bins
    (``render_depth_bins``, last interval open) gives an RGB image in
    [0, 1] and an expected depth (metres) at the feature resolution.

    Args:
        in_channels (int): Context channels C of the frustum features.
        dbound (Sequence[float]): Depth bins (min, max, step), metres; the
            same as the view transform's.
        density_bias_init (float, optional): Initial bias of the density
            channel, 1/metre. None keeps PyTorch's default
            U(-1/sqrt(C), 1/sqrt(C)) (released code): the one shared bias
            is then negative for about half the seeds, and with the small
            frustum features at init (softmax over D bins times context)
            every density is clamped to 0 by the ReLU, every ray is
            transparent and the head gets no gradient (measured on the tiny
            config: rendered depth 0 everywhere, RGB loss constant over 20
            steps). A positive value (e.g. 0.1, an initial expected depth
            ~10 m beyond the first bin) starts every ray semi-opaque.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 dbound: Sequence[float],
                 density_bias_init: Optional[float] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        depths = torch.arange(*[float(v) for v in dbound])
        self.register_buffer('bin_depths', depths, persistent=False)
        self.num_bins = depths.numel()
        self.in_channels = in_channels
        self.render_conv = nn.Conv2d(in_channels, 4, 1)
        self.density_bias_init = density_bias_init
        self._init_density_bias()

    def _init_density_bias(self) -> None:
        """Set the density bias to ``density_bias_init`` (if given)."""
        if self.density_bias_init is not None:
            with torch.no_grad():
                self.render_conv.bias[0] = float(self.density_bias_init)

    def init_weights(self) -> None:
        """Run ``init_cfg`` (if any), then set the density bias."""
        super().init_weights()
        self._init_density_bias()

    def decode_bins(self, frustum_feats: Tensor) -> Tuple[Tensor, Tensor]:
        """Density and colour of every frustum sample, one bin at a time.

        Args:
            frustum_feats (Tensor): [B, N_cam, D, h, w, C] frustum features.

        Returns:
            tuple[Tensor, Tensor]: raw density [B * N_cam, D, h, w]
            (1/metre, before the ReLU of the compositing) and colour
            [B * N_cam, D, 3, h, w] in [0, 1] (sigmoid), both float32.
        """
        batch, num_cams, num_bins, feat_h, feat_w, channels = \
            frustum_feats.shape
        if (num_bins, channels) != (self.num_bins, self.in_channels):
            raise ValueError(
                f'frustum features have D={num_bins}, C={channels}; the head '
                f'was built for D={self.num_bins}, C={self.in_channels}')
        # the 1x1 conv over [B * N_cam * D, C, h, w], written as a linear
        # map of the channel-last frustum (no permuted copy of the frustum)
        raw = F.linear(frustum_feats, self.render_conv.weight.flatten(1),
                       self.render_conv.bias).float()
        raw = raw.flatten(0, 1).permute(0, 1, 4, 2, 3)  # [B*N, D, 4, h, w]
        return raw[:, :, 0], raw[:, :, 1:].sigmoid()

    def forward(self, frustum_feats: Tensor) -> Dict[str, Tensor]:
        """Render every camera.

        Args:
            frustum_feats (Tensor): [B, N_cam, D, h, w, C] frustum features.

        Returns:
            dict[str, Tensor]: ``rgb`` [B, N_cam, 3, h, w] in [0, 1],
            ``depth`` [B, N_cam, h, w] expected depth (metres) and
            ``opacity`` [B, N_cam, h, w] in [0, 1].
        """
        batch, num_cams, _, feat_h, feat_w, _ = frustum_feats.shape
        density, color = self.decode_bins(frustum_feats)
        # compositing (cumprod of transmittance) stays in float32 under AMP
        with torch.autocast(device_type=density.device.type, enabled=False):
            out = render_depth_bins(density, color, self.bin_depths,
                                    bin_dim=1)
        return dict(
            rgb=out['rgb'].view(batch, num_cams, 3, feat_h, feat_w),
            depth=out['depth'].view(batch, num_cams, feat_h, feat_w),
            opacity=out['opacity'].view(batch, num_cams, feat_h, feat_w))

    def loss(self, preds: Dict[str, Tensor], rgb_target: Tensor,
             depth_target: Tensor,
             rgb_weight_mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Unweighted perspective losses.

        Args:
            preds (dict): Output of :meth:`forward`.
            rgb_target (Tensor): [B, N_cam, 3, h, w] unmasked image in
                [0, 1] downsampled to the feature stride.
            depth_target (Tensor): [B, N_cam, h, w] LiDAR depth (metres) from
                the uncorrupted points, 0 where no point.
            rgb_weight_mask (Tensor, optional): [B, N_cam, h, w] bool, pixels
                where the colour loss applies (default: all).

        Returns:
            dict[str, Tensor]: ``loss_rgb`` (MSE) and ``loss_pv_depth`` (L1
            over pixels with LiDAR depth), finite also when no pixel counts.
        """
        if rgb_weight_mask is None:
            rgb_weight_mask = torch.ones_like(depth_target, dtype=torch.bool)
        loss_rgb = masked_mse(preds['rgb'], rgb_target,
                              rgb_weight_mask.unsqueeze(2).expand_as(
                                  rgb_target))
        loss_depth = masked_l1(preds['depth'], depth_target, depth_target > 0)
        return dict(loss_rgb=loss_rgb, loss_pv_depth=loss_depth)


@MODELS.register_module()
class NSMAEBEVRenderHead(BaseModule):
    """Render the first-hit height of vertical rays from the fused BEV map.

    A 3x3 conv maps the BEV map to one density per height bin; compositing
    top-down along each cell's vertical ray (``render_bev_height``) gives
    the expected height (metres, LiDAR frame) of the first occupied bin.

    Args:
        in_channels (int): Channels of the fused BEV map.
        zbound (Sequence[float]): Height range (min, max) in metres, LiDAR
            frame (e.g. the voxel grid's [-5, 3]).
        num_bins (int): Number of height bins (e.g. 41, the voxel grid's Z).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 zbound: Sequence[float],
                 num_bins: int,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.zbound = (float(zbound[0]), float(zbound[1]))
        self.num_bins = num_bins
        self.register_buffer(
            'z_centres', bin_centres(*self.zbound, num_bins),
            persistent=False)
        self.density_conv = nn.Conv2d(in_channels, num_bins, 3, padding=1)

    def forward(self, bev_feats: Tensor) -> Dict[str, Tensor]:
        """Render the BEV height map.

        Args:
            bev_feats (Tensor): [B, C, H_bev, W_bev] fused BEV features.

        Returns:
            dict[str, Tensor]: ``height`` [B, H_bev, W_bev] (metres, LiDAR
            z), ``opacity`` [B, H_bev, W_bev] in [0, 1].
        """
        density = self.density_conv(bev_feats).float()
        with torch.autocast(device_type=density.device.type, enabled=False):
            out = render_bev_height(density, self.z_centres, z_dim=1)
        return dict(height=out['height'], opacity=out['opacity'])

    def loss(self, preds: Dict[str, Tensor], height_target: Tensor,
             valid: Tensor) -> Dict[str, Tensor]:
        """Unweighted BEV loss.

        Args:
            preds (dict): Output of :meth:`forward`.
            height_target (Tensor): [B, H_bev, W_bev] first-hit height of
                the masked-out voxels, metres.
            valid (Tensor): [B, H_bev, W_bev] bool, cells with a target.

        Returns:
            dict[str, Tensor]: ``loss_bev_depth`` (L1 over valid cells; 0,
            finite, when none).
        """
        return dict(
            loss_bev_depth=masked_l1(preds['height'], height_target, valid))
