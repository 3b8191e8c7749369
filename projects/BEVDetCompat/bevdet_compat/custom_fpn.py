"""BEVDet's image neck (``CustomFPN``) as a registered subclass of mmdet's FPN."""
from typing import List, Sequence, Tuple

from mmdet.models.necks import FPN
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class BEVDetCustomFPN(FPN):
    """FPN that keeps only the output convolutions of the levels it returns.

    Differs from :class:`mmdet.models.necks.FPN` in two ways, both taken from
    BEVDet's ``CustomFPN`` (HuangJunJie2017/BEVDet, ``mmdet3d/models/necks/
    fpn.py``) so that its checkpoints load strictly:

    * only the levels listed in ``out_ids`` own a 3x3 output convolution, so
      the state dict holds ``fpn_convs.{j}`` for ``j < len(out_ids)`` only
      (bevdet-r50: ``lateral_convs.{0,1}`` and ``fpn_convs.0``);
    * ``forward`` returns the fused maps of the ``out_ids`` levels only
      (bevdet-r50: the stride-16 map, 512 channels) and never adds extra
      pyramid levels.

    Args:
        in_channels (list[int]): Channels of the backbone levels it receives.
        out_channels (int): Channels of every lateral and output map.
        num_outs (int): Number of returned maps; must equal ``len(out_ids)``.
        start_level (int): First backbone level used. Defaults to 0.
        out_ids (Sequence[int]): Indices, counted from ``start_level``, of the
            fused levels that are returned. Defaults to ``(0,)``.
        **kwargs: Remaining :class:`mmdet.models.necks.FPN` arguments except
            ``end_level`` and ``add_extra_convs``.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 out_ids: Sequence[int] = (0, ),
                 **kwargs) -> None:
        for key in ('end_level', 'add_extra_convs'):
            if key in kwargs:
                raise ValueError(f'BEVDetCustomFPN does not support {key!r}: it '
                                 'fuses every level from start_level to the last one')
        num_levels = len(in_channels) - start_level
        out_ids = list(out_ids)
        if num_outs != len(out_ids):
            raise ValueError(f'BEVDetCustomFPN: num_outs={num_outs} must equal '
                             f'len(out_ids)={len(out_ids)} (out_ids={out_ids})')
        if not out_ids or min(out_ids) < 0 or max(out_ids) >= num_levels:
            raise ValueError(f'BEVDetCustomFPN: out_ids={out_ids} must index the '
                             f'{num_levels} fused levels from start_level={start_level}')
        super().__init__(
            in_channels, out_channels, num_outs=num_levels, start_level=start_level, **kwargs)
        self.out_ids = out_ids
        self.fpn_convs = nn.ModuleList(self.fpn_convs[i] for i in out_ids)

    def forward(self, inputs: Tuple[Tensor]) -> Tuple[Tensor, ...]:
        """Fuse the backbone levels top-down and return the ``out_ids`` maps.

        Args:
            inputs (tuple[Tensor]): Backbone maps, level ``l`` of shape
                (B*N_cam, in_channels[l], H_l, W_l).

        Returns:
            tuple[Tensor]: ``len(out_ids)`` maps (B*N_cam, out_channels, H_i, W_i).
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'BEVDetCustomFPN expects {len(self.in_channels)} input '
                             f'levels, got {len(inputs)}')
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + nn.functional.interpolate(
                laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
        return tuple(conv(laterals[i]) for conv, i in zip(self.fpn_convs, self.out_ids))
