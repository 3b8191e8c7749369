"""Spatial masking of every input image with a learnable mask token."""
import math
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.masking import apply_mask_token, generate_patch_mask


@MODELS.register_module()
class MIM4DImageMasker(BaseModule):
    """Mask ``mask_ratio`` of the ``cell_size`` cells of every image independently.

    MIM4D masks 32 x 32-pixel cells (~30 %) of each image and feeds them to a
    SparK-style sparse ConvNeXt. Neither mmdet 3.3 nor mmcv ships a ConvNeXt
    (it lives in mmpretrain, not installed here) and the transferred weights
    must load into stock dense backbones (``mmdet.ResNet`` of BEVDet /
    BEVFusion), so the masked cells are replaced by a learnable token on the
    NORMALISED image before a dense backbone (SimMIM-style; the documented
    equivalent of METHODS.md). The token is a (3, p, p) parameter,
    zero-initialised (a masked cell starts as the dataset mean colour).

    Args:
        cell_size (int): Cell side p in pixels (paper: 32); the (padded) image
            size must be divisible by it.
        mask_ratio (float): Fraction of masked cells per image in [0, 1]
            (paper: ~0.3); the count is exact per image.
        in_channels (int): Image channels.
    """

    def __init__(self, cell_size: int = 32, mask_ratio: float = 0.3,
                 in_channels: int = 3) -> None:
        super().__init__()
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f'mask_ratio must be in [0, 1], got {mask_ratio}')
        self.cell_size = int(cell_size)
        self.mask_ratio = float(mask_ratio)
        self.mask_token = nn.Parameter(torch.zeros(in_channels, cell_size, cell_size))

    def forward(self, imgs: Tensor, generator: Optional[torch.Generator]) -> Tuple[Tensor, Tensor]:
        """Mask a batch of images (one independent mask per image).

        Args:
            imgs (Tensor): (..., 3, H, W) normalised images, e.g.
                (B, S, N_cam, 3, H, W); H and W divisible by ``cell_size``.
            generator (torch.Generator, optional): Source of randomness.

        Returns:
            tuple[Tensor, Tensor]: masked images (..., 3, H, W) (a new tensor)
            and the cell mask (..., H / p, W / p) bool, True = masked.
        """
        lead = imgs.shape[:-3]
        img_h, img_w = imgs.shape[-2:]
        if img_h % self.cell_size or img_w % self.cell_size:
            raise ValueError(f'image size {img_h}x{img_w} is not divisible by the mask cell '
                             f'size {self.cell_size}: set the data preprocessor '
                             f'pad_size_divisor to a multiple of {self.cell_size}')
        num = math.prod(lead)
        mask = generate_patch_mask(num, (img_h, img_w), self.cell_size, self.mask_ratio,
                                   generator=generator, device=imgs.device)
        mask = mask.view(*lead, *mask.shape[1:])
        return apply_mask_token(imgs, mask, self.mask_token), mask
