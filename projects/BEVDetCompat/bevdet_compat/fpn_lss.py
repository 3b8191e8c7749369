"""BEVDet's BEV-encoder neck (``FPN_LSS``): fuse two BEV stages and upsample."""
from typing import Optional, Sequence

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class BEVDetFPNLSS(BaseModule):
    """Two-level BEV neck named as BEVDet's ``FPN_LSS``.

    ``out = up2(conv(cat(feats[i_shallow], upsample(feats[i_deep]))))``:
    the deep stage is bilinearly upsampled by ``scale_factor`` to the shallow
    stage's size, concatenated after the shallow stage (channels
    ``[0, C_s)`` shallow, ``[C_s, C_s + C_d)`` deep, as official
    ``FPN_LSS.forward``: ``torch.cat([x2, x1])``), passed through two 3x3
    conv-BN-ReLU (``conv.{0,1,3,4}``), then, if ``extra_upsample``, upsampled
    again and projected to ``out_channels`` (``up2.{1,2,4}``). Key names
    follow HuangJunJie2017/BEVDet ``mmdet3d/models/necks/lss_fpn.py``.

    Args:
        in_channels (int): Channels of the two concatenated stages.
        out_channels (int): Output channels.
        scale_factor (int): Upsampling of the deep stage. Defaults to 4.
        input_feature_index (Sequence[int]): (shallow, deep) stage indices of
            the backbone output. Defaults to (0, 2).
        norm_cfg (dict): Norm layer config. Defaults to BN.
        extra_upsample (int, optional): Final upsampling factor; ``None``
            returns the fused map at the shallow stage's size. Defaults to 2.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scale_factor: int = 4,
                 input_feature_index: Sequence[int] = (0, 2),
                 norm_cfg: dict = dict(type='BN'),
                 extra_upsample: Optional[int] = 2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(input_feature_index) != 2:
            raise ValueError('BEVDetFPNLSS: input_feature_index must be (shallow, deep), got '
                             f'{list(input_feature_index)}')
        self.input_feature_index = list(input_feature_index)
        self.up = nn.Upsample(scale_factor=scale_factor, mode='bilinear', align_corners=True)
        mid = out_channels * 2 if extra_upsample else out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, 3, padding=1, bias=False),
            build_norm_layer(norm_cfg, mid)[1], nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            build_norm_layer(norm_cfg, mid)[1], nn.ReLU(inplace=True))
        self.up2 = None
        if extra_upsample:
            self.up2 = nn.Sequential(
                nn.Upsample(scale_factor=extra_upsample, mode='bilinear', align_corners=True),
                nn.Conv2d(mid, out_channels, 3, padding=1, bias=False),
                build_norm_layer(norm_cfg, out_channels)[1], nn.ReLU(inplace=True),
                nn.Conv2d(out_channels, out_channels, 1))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Fuse the shallow and deep BEV stages.

        Args:
            feats (Sequence[Tensor]): Backbone stages; the shallow one is
                (B, C_s, H_s, W_s), the deep one (B, C_d, H_s / scale_factor,
                W_s / scale_factor) with C_s + C_d = in_channels.

        Returns:
            Tensor: (B, out_channels, H_s * extra_upsample, W_s * extra_upsample).
        """
        shallow, deep = (feats[i] for i in self.input_feature_index)
        x = self.conv(torch.cat([shallow, self.up(deep)], dim=1))
        return self.up2(x) if self.up2 is not None else x
