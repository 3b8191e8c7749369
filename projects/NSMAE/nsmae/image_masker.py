"""NS-MAE's multi-view image patch masking: :class:`PatchImageMasker` with the paper values."""
from mmdet3d.registry import MODELS
from projects.common.patch_image_masker import PatchImageMasker


@MODELS.register_module()
class NSMAEImageMasker(PatchImageMasker):
    """NS-MAE image masking: 8 x 8-pixel patches, 50 % masked, learnable token.

    :class:`projects.common.patch_image_masker.PatchImageMasker` with the
    paper's defaults; no logic of its own.

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
        super().__init__(patch_size, mask_ratio, shared_across_views, in_channels)
