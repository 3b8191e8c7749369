"""SimMIM-style patch masking of multi-view images with a learnable token.

One module serves both methods: NS-MAE masks 8 x 8-pixel patches (50 %,
``NSMAEImageMasker``), MIM4D 32 x 32-pixel cells (~30 %,
``MIM4DImageMasker``); both registered names are thin subclasses of
:class:`PatchImageMasker` that only set the paper defaults (and MIM4D's
``cell_size`` name). The mask and the token come from the core
(:func:`render_pretrain.masking.generate_patch_mask`,
:func:`render_pretrain.masking.apply_mask_token`).
"""
import math
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.masking import apply_mask_token, generate_patch_mask


@MODELS.register_module()
class PatchImageMasker(BaseModule):
    """Replace ``mask_ratio`` of the ``patch_size`` patches of every image by a token.

    Applied inside the model on the NORMALISED images produced by the data
    preprocessor, so the unmasked batch stays available as the
    reconstruction target. The token is a (3, p, p) parameter,
    zero-initialised (SimMIM): a masked patch starts as the dataset mean
    colour. Its attribute name ``mask_token`` is the checkpoint key.

    Args:
        patch_size (int): Patch side p in pixels; the (padded) image size
            must be divisible by it.
        mask_ratio (float): Fraction of masked patches per image, in [0, 1];
            the count is exact per image (round half up).
        shared_across_views (bool): One mask per sample shared by all its
            cameras (the images' dimension -4); default: an independent mask
            per image.
        in_channels (int): Image channels. Defaults to 3.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 patch_size: int,
                 mask_ratio: float,
                 shared_across_views: bool = False,
                 in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f'mask_ratio must be in [0, 1], got {mask_ratio}')
        if int(patch_size) <= 0:
            raise ValueError(f'patch_size must be a positive number of pixels, got {patch_size}')
        self.patch_size = int(patch_size)
        self.mask_ratio = float(mask_ratio)
        self.shared_across_views = bool(shared_across_views)
        self.mask_token = nn.Parameter(torch.zeros(in_channels, self.patch_size,
                                                   self.patch_size))

    def forward(self, imgs: Tensor, generator: Optional[torch.Generator]
                ) -> Tuple[Tensor, Tensor]:
        """Mask a batch of images.

        Args:
            imgs (Tensor): (..., N_cam, 3, H, W) normalised images, e.g.
                (B, N_cam, 3, H, W) or (B, S, N_cam, 3, H, W); H and W
                divisible by ``patch_size``. With ``shared_across_views``
                the views of dimension -4 share one mask.
            generator (torch.Generator, optional): Source of randomness
                (None: torch's global RNG).

        Returns:
            tuple[Tensor, Tensor]: masked images (..., 3, H, W) (a new
            tensor) and the patch mask (..., H / p, W / p) bool, True =
            masked.
        """
        lead = imgs.shape[:-3]
        img_h, img_w = imgs.shape[-2:]
        if img_h % self.patch_size or img_w % self.patch_size:
            raise ValueError(f'image size {img_h}x{img_w} is not divisible by the mask patch '
                             f'size {self.patch_size}: set the data preprocessor '
                             f'pad_size_divisor to a multiple of {self.patch_size}')
        if self.shared_across_views and len(lead) < 2:
            raise ValueError('shared_across_views needs images (..., N_cam, 3, H, W), got '
                             f'{tuple(imgs.shape)}')
        mask = generate_patch_mask(
            math.prod(lead), (img_h, img_w), self.patch_size, self.mask_ratio,
            generator=generator,
            shared_across=lead[-1] if self.shared_across_views else None,
            device=imgs.device)
        mask = mask.view(*lead, *mask.shape[1:])
        return apply_mask_token(imgs, mask, self.mask_token), mask
