"""MIM4D's spatial masking of every input image: :class:`PatchImageMasker` in cells."""
from mmdet3d.registry import MODELS
from projects.common.patch_image_masker import PatchImageMasker


@MODELS.register_module()
class MIM4DImageMasker(PatchImageMasker):
    """Mask ``mask_ratio`` of the ``cell_size`` cells of every image independently.

    MIM4D masks 32 x 32-pixel cells (~30 %) of each image and feeds them to a
    SparK-style sparse ConvNeXt. Neither mmdet 3.3 nor mmcv ships a ConvNeXt
    (it lives in mmpretrain, not installed here) and the transferred weights
    must load into stock dense backbones (``mmdet.ResNet`` of BEVDet /
    BEVFusion), so the masked cells are replaced by a learnable token on the
    NORMALISED image before a dense backbone (SimMIM-style; the documented
    equivalent of METHODS.md).

    :class:`projects.common.patch_image_masker.PatchImageMasker` with the
    paper's defaults and MIM4D's name for the patch side (``cell_size`` =
    ``patch_size``); every image of the (B, S, N_cam) batch gets its own mask.

    Args:
        cell_size (int): Cell side p in pixels (paper: 32); the (padded) image
            size must be divisible by it.
        mask_ratio (float): Fraction of masked cells per image in [0, 1]
            (paper: ~0.3); the count is exact per image.
        in_channels (int): Image channels.
    """

    def __init__(self, cell_size: int = 32, mask_ratio: float = 0.3,
                 in_channels: int = 3) -> None:
        super().__init__(cell_size, mask_ratio, shared_across_views=False,
                         in_channels=in_channels)

    @property
    def cell_size(self) -> int:
        """Cell side in pixels (MIM4D's name of ``patch_size``)."""
        return self.patch_size
