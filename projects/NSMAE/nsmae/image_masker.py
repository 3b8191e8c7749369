"""SimMIM-style multi-view image patch masking with a learnable token."""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.masking import apply_mask_token, generate_patch_mask


@MODELS.register_module()
class NSMAEImageMasker(BaseModule):
    """Replace random image patches by a learnable (3, p, p) token.

    Applied inside the model on the NORMALISED images produced by the data
    preprocessor, so the unmasked batch stays available as the
    reconstruction target. The token is zero-initialised (SimMIM), i.e. a
    masked patch starts as the dataset mean colour.

    Args:
        patch_size (int): Patch side p in pixels (paper: 8).
        mask_ratio (float): Fraction of masked patches per image, in [0, 1]
            (paper: 0.5); the count is exact per image.
        shared_across_views (bool): One mask per sample shared by all its
            cameras (default: an independent mask per image).
        in_channels (int): Image channels. Defaults to 3.
    """

    def __init__(self,
                 patch_size: int = 8,
                 mask_ratio: float = 0.5,
                 shared_across_views: bool = False,
                 in_channels: int = 3) -> None:
        super().__init__()
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f'mask_ratio must be in [0, 1], got {mask_ratio}')
        self.patch_size = patch_size
        self.mask_ratio = mask_ratio
        self.shared_across_views = shared_across_views
        self.mask_token = nn.Parameter(
            torch.zeros(in_channels, patch_size, patch_size))

    def forward(self, imgs: Tensor, generator: Optional[torch.Generator]
                ) -> Tuple[Tensor, Tensor]:
        """Mask a batch of multi-view images.

        Args:
            imgs (Tensor): [B, N_cam, 3, H, W] normalised images; H and W
                divisible by ``patch_size``.
            generator (torch.Generator, optional): Source of randomness.

        Returns:
            tuple[Tensor, Tensor]: masked images [B, N_cam, 3, H, W] (a new
            tensor) and the patch mask [B, N_cam, H / p, W / p] (bool, True =
            masked).
        """
        batch, num_cams = imgs.shape[:2]
        mask = generate_patch_mask(
            batch * num_cams,
            imgs.shape[-2:],
            self.patch_size,
            self.mask_ratio,
            generator=generator,
            shared_across=num_cams if self.shared_across_views else None,
            device=imgs.device)
        mask = mask.view(batch, num_cams, *mask.shape[1:])
        return apply_mask_token(imgs, mask, self.mask_token), mask
