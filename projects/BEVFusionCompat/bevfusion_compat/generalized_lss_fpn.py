"""BEVFusion-compatible image neck (GeneralizedLSSFPN layout)."""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class BEVFusionCompatGeneralizedLSSFPN(BaseModule):
    """Top-down FPN that concatenates (not adds) the upsampled coarser level.

    Same parameter structure as BEVFusion's ``GeneralizedLSSFPN`` (mmdet3d
    1.x ``projects/BEVFusion``): ``lateral_convs.{i}`` is a 1x1
    :class:`ConvModule` on ``in_channels[i] + in_channels[i + 1]`` (coarsest
    pair) or ``in_channels[i] + out_channels`` (others), ``fpn_convs.{i}`` a
    3x3 :class:`ConvModule`, so its checkpoints load into the stock neck.

    Args:
        in_channels (Sequence[int]): Channels of the backbone levels used.
        out_channels (int): Output channels of every level.
        num_outs (int): Number of outputs (kept for config compatibility;
            the neck returns ``len(in_channels) - 1`` levels).
        start_level (int): First backbone level used. Defaults to 0.
        norm_cfg (dict): Norm layer config. Defaults to BN2d.
        act_cfg (dict): Activation config. Defaults to ReLU.
        upsample_cfg (dict): Keyword arguments of ``F.interpolate``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 norm_cfg: dict = dict(type='BN2d'),
                 act_cfg: dict = dict(type='ReLU'),
                 upsample_cfg: dict = dict(
                     mode='bilinear', align_corners=False),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) < 2:
            raise ValueError('BEVFusionCompatGeneralizedLSSFPN needs at least two input '
                             f'levels, got in_channels={in_channels}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.start_level = start_level
        self.upsample_cfg = dict(upsample_cfg)
        end_level = len(self.in_channels) - 1
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, end_level):
            coarser = (self.in_channels[i + 1]
                       if i == end_level - 1 else out_channels)
            self.lateral_convs.append(
                ConvModule(
                    self.in_channels[i] + coarser,
                    out_channels,
                    1,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg,
                    inplace=False))
            self.fpn_convs.append(
                ConvModule(
                    out_channels,
                    out_channels,
                    3,
                    padding=1,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg,
                    inplace=False))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Fuse backbone levels top-down.

        Args:
            inputs (Sequence[Tensor]): Backbone levels, each
                [B*N_cam, in_channels[i], H_i, W_i], finest first.

        Returns:
            tuple[Tensor]: ``len(in_channels) - 1`` maps
            [B*N_cam, out_channels, H_i, W_i], finest first.
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'expected {len(self.in_channels)} backbone '
                             f'levels, got {len(inputs)}')
        levels: List[Tensor] = list(inputs[self.start_level:])
        for i in range(len(levels) - 2, -1, -1):
            coarser = F.interpolate(
                levels[i + 1], size=levels[i].shape[2:], **self.upsample_cfg)
            fused = torch.cat([levels[i], coarser], dim=1)
            levels[i] = self.fpn_convs[i](self.lateral_convs[i](fused))
        return tuple(levels[:-1])
