"""BEV map-segmentation head, parameter-compatible with BEVFusion's."""
from typing import Dict, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.bev_grid_transform import BEVGridTransform
from render_pretrain.segmentation_losses import per_class_binary_loss


@MODELS.register_module()
class BEVFusionSegHead(BaseModule):
    """Multi-label BEV map segmentation (BEVFusion's ``BEVSegmentationHead``).

    Same structure and parameter names as mit-han-lab/bevfusion
    ``mmdet3d/models/heads/segm/vanilla.py`` (``BEVSegmentationHead(
    in_channels, grid_transform, classes, loss)``), so that the keys
    ``heads.map.classifier.*`` of its checkpoints map 1:1 onto
    ``seg_head.classifier.*``:

    - ``transform``: parameter-free :class:`BEVGridTransform` that resamples
      the BEV map from ``input_scope`` onto the label grid ``output_scope``
      (bilinear, ``align_corners=False``; BEVFusion: ``[-51.2, 51.2, 0.8]``
      -> ``[-50, 50, 0.5]`` per axis, 128 -> 200 cells);
    - ``classifier``: Conv3x3(C, C, no bias) - BN(C) - ReLU - Conv3x3(C, C,
      no bias) - BN(C) - ReLU - Conv1x1(C, num_classes) (indices 0, 1, 3, 4,
      6 hold tensors);
    - one loss per class, each a mean over batch and cells, ``'focal'``
      (gamma 2; BEVFusion applies no alpha) or ``'xent'`` (BCE).

    Args:
        in_channels (int): C of the decoder's BEV map (BEVFusion C+L: 512).
        grid_transform (dict): ``input_scope``, ``output_scope`` (each
            ``[[x_min, x_max, x_step], [y_min, y_max, y_step]]``, metres,
            LiDAR frame) and optionally ``input_axes`` (``'xy'``: input
            [B, C, X, Y], BEVFusion's layout; ``'yx'``: [B, C, Y, X]).
        classes (Sequence[str]): Map classes, in label order.
        loss (str): ``'focal'`` or ``'xent'``.
        focal_gamma (float): Focal exponent.
        focal_alpha (float, optional): Focal positive weight (None as
            BEVFusion).
        loss_weight (float): Multiplies every class loss.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 grid_transform: dict,
                 classes: Sequence[str],
                 loss: str = 'focal',
                 focal_gamma: float = 2.0,
                 focal_alpha: Optional[float] = None,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss not in ('focal', 'xent'):
            raise ValueError(f"BEVFusionSegHead: loss must be 'focal' or 'xent', got {loss!r}")
        if len(classes) == 0:
            raise ValueError('BEVFusionSegHead: classes is empty')
        self.in_channels = in_channels
        self.classes = tuple(classes)
        self.loss_kind = loss
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.loss_weight = loss_weight
        self.transform = BEVGridTransform(**grid_transform)
        self.classifier = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(True),
            nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(True),
            nn.Conv2d(in_channels, len(self.classes), 1),
        )

    @property
    def output_shape(self):
        """(X_out, Y_out) cells of the predicted masks."""
        return self.transform.output_shape

    def forward(self, bev: Tensor) -> Tensor:
        """Logits [B, num_classes, X_out, Y_out] of a BEV map [B, C, *input]."""
        if isinstance(bev, (list, tuple)):
            bev = bev[0]
        return self.classifier(self.transform(bev))

    def loss_by_logits(self, logits: Tensor, gt_masks: Tensor) -> Dict[str, Tensor]:
        """Per-class losses ``loss_{class}`` of logits against [B, C, X, Y] masks."""
        if gt_masks.shape != logits.shape:
            raise ValueError(f'BEVFusionSegHead: labels {tuple(gt_masks.shape)} do not match '
                             f'the predicted masks {tuple(logits.shape)} ([B, classes, X, Y] '
                             f'of output_scope {self.transform.output_scope})')
        per_class = per_class_binary_loss(logits, gt_masks, self.loss_kind, self.focal_gamma,
                                          self.focal_alpha)
        return {f'loss_{name}': self.loss_weight * per_class[index]
                for index, name in enumerate(self.classes)}

    def loss(self, bev: Tensor, gt_masks: Tensor) -> Dict[str, Tensor]:
        """Losses of a BEV map [B, C, *input] against masks [B, classes, X, Y]."""
        return self.loss_by_logits(self(bev), gt_masks)

    def predict(self, bev: Tensor) -> Tensor:
        """Probabilities [B, num_classes, X_out, Y_out] in [0, 1]."""
        return torch.sigmoid(self(bev))
