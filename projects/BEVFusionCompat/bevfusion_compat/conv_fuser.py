"""BEVFusion-compatible camera/LiDAR BEV fuser (ConvFuser layout)."""
from typing import Sequence

import torch
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class BEVFusionCompatConvFuser(nn.Sequential):
    """Concatenate BEV maps and fuse them with conv3x3-BN-ReLU.

    Same parameter structure as BEVFusion's ``ConvFuser``
    (``fusion_layer.0`` conv without bias, ``fusion_layer.1`` BatchNorm).

    Args:
        in_channels (Sequence[int]): Channels of each input BEV map, in the
            order they are passed (camera first, then LiDAR, as BEVFusion).
        out_channels (int): Output channels.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        super().__init__(
            nn.Conv2d(sum(in_channels), out_channels, 3, padding=1,
                      bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(True),
        )

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Fuse BEV maps.

        Args:
            inputs (Sequence[Tensor]): BEV maps [B, C_i, H_bev, W_bev] with
                ``C_i == in_channels[i]``, all on the same BEV grid.

        Returns:
            Tensor: Fused BEV map [B, out_channels, H_bev, W_bev].
        """
        channels = [x.shape[1] for x in inputs]
        if channels != self.in_channels:
            raise ValueError(f'BEVFusionCompatConvFuser expected BEV maps with channels '
                             f'{self.in_channels}, got {channels}')
        return super().forward(torch.cat(list(inputs), dim=1))
