"""BEVDet's BEV-encoder backbone (``CustomResNet``) built from mmdet's BasicBlock."""
from typing import List, Optional, Sequence, Tuple

from mmdet.models.backbones.resnet import BasicBlock
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmdet3d.registry import MODELS


@MODELS.register_module()
class BEVDetCustomResNet(BaseModule):
    """Residual backbone over the BEV map, named as BEVDet's ``CustomResNet``.

    Stage ``i`` is ``layers.{i}``: one strided :class:`BasicBlock` whose
    shortcut is a plain 3x3 strided convolution (``layers.{i}.0.downsample``,
    with bias, no norm, as in BEVDet) followed by ``num_layer[i] - 1`` basic
    blocks. Key names follow HuangJunJie2017/BEVDet
    ``mmdet3d/models/backbones/resnet.py`` so that its BEV-encoder weights
    load.

    Args:
        numC_input (int): Channels of the input BEV map (view-transformer
            output, ``C_bev``).
        num_layer (Sequence[int]): Blocks per stage. Defaults to (2, 2, 2).
        num_channels (Sequence[int], optional): Output channels per stage;
            defaults to ``numC_input * 2 ** (i + 1)``.
        stride (Sequence[int]): Stride per stage. Defaults to (2, 2, 2).
        backbone_output_ids (Sequence[int], optional): Stages returned;
            defaults to all.
        norm_cfg (dict): Norm layer config. Defaults to BN.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 numC_input: int,
                 num_layer: Sequence[int] = (2, 2, 2),
                 num_channels: Optional[Sequence[int]] = None,
                 stride: Sequence[int] = (2, 2, 2),
                 backbone_output_ids: Optional[Sequence[int]] = None,
                 norm_cfg: dict = dict(type='BN'),
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(num_layer) != len(stride):
            raise ValueError(f'BEVDetCustomResNet: num_layer {list(num_layer)} and stride '
                             f'{list(stride)} must have the same length')
        if num_channels is None:
            num_channels = [numC_input * 2**(i + 1) for i in range(len(num_layer))]
        if len(num_channels) != len(num_layer):
            raise ValueError(f'BEVDetCustomResNet: num_channels {list(num_channels)} must '
                             f'have one entry per stage ({len(num_layer)})')
        if backbone_output_ids is None:
            backbone_output_ids = range(len(num_layer))
        self.backbone_output_ids = list(backbone_output_ids)
        self.with_cp = with_cp
        stages: List[nn.Module] = []
        in_ch = numC_input
        for n_blocks, out_ch, s in zip(num_layer, num_channels, stride):
            blocks = [
                BasicBlock(in_ch, out_ch, stride=s,
                           downsample=nn.Conv2d(in_ch, out_ch, 3, s, 1), norm_cfg=norm_cfg)
            ]
            blocks += [BasicBlock(out_ch, out_ch, norm_cfg=norm_cfg) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = out_ch
        self.layers = nn.Sequential(*stages)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the stages.

        Args:
            x (Tensor): BEV map (B, numC_input, N_y, N_x), rows along lidar y.

        Returns:
            tuple[Tensor]: Maps of the stages in ``backbone_output_ids``, stage
            ``i`` of shape (B, num_channels[i], N_y / prod(stride[:i+1]),
            N_x / prod(stride[:i+1])).
        """
        feats = []
        for i, stage in enumerate(self.layers):
            if self.with_cp and x.requires_grad:
                x = checkpoint(stage, x, use_reentrant=False)
            else:
                x = stage(x)
            if i in self.backbone_output_ids:
                feats.append(x)
        return tuple(feats)
