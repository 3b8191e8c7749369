"""One patch masker: PatchImageMasker and its two registered specialisations.

Masks are checked against the pixels themselves (a masked p x p patch holds
the token, every other pixel the input image), not against the masking code.
"""
import pytest
import torch

from mmdet3d.registry import MODELS
from projects.common.patch_image_masker import PatchImageMasker
from projects.MIM4D.mim4d.image_masker import MIM4DImageMasker
from projects.NSMAE.nsmae.image_masker import NSMAEImageMasker


def _check_pixels(imgs, out, mask, token, patch):
    """Every patch of ``out`` is the token where masked, else the input patch."""
    lead = imgs.shape[:-3]
    grid_h, grid_w = mask.shape[-2:]
    flat_in = imgs.reshape(-1, *imgs.shape[-3:])
    flat_out = out.reshape(-1, *imgs.shape[-3:])
    flat_mask = mask.reshape(-1, grid_h, grid_w)
    assert flat_mask.shape[0] == torch.Size(lead).numel()
    for img in range(flat_mask.shape[0]):
        for row in range(grid_h):
            for col in range(grid_w):
                win = (slice(None), slice(row * patch, (row + 1) * patch),
                       slice(col * patch, (col + 1) * patch))
                expected = token if flat_mask[img, row, col] else flat_in[img][win]
                assert torch.equal(flat_out[img][win], expected)


def test_registered_names_are_one_module():
    generic = MODELS.build(dict(type='PatchImageMasker', patch_size=16, mask_ratio=0.25))
    nsmae = MODELS.build(dict(type='NSMAEImageMasker'))
    mim4d = MODELS.build(dict(type='MIM4DImageMasker'))
    assert isinstance(generic, PatchImageMasker)
    assert isinstance(nsmae, PatchImageMasker) and isinstance(mim4d, PatchImageMasker)
    # only the constructor differs: no forward of their own
    assert NSMAEImageMasker.forward is PatchImageMasker.forward
    assert MIM4DImageMasker.forward is PatchImageMasker.forward
    # paper values (NS-MAE 8 px / 50 %, MIM4D 32 px / 0.3) and the checkpoint key
    assert (nsmae.patch_size, nsmae.mask_ratio, nsmae.shared_across_views) == (8, 0.5, False)
    assert (mim4d.cell_size, mim4d.patch_size, mim4d.mask_ratio) == (32, 32, 0.3)
    assert list(nsmae.state_dict()) == list(mim4d.state_dict()) == ['mask_token']
    assert nsmae.mask_token.shape == (3, 8, 8) and mim4d.mask_token.shape == (3, 32, 32)
    assert not nsmae.mask_token.any() and not mim4d.mask_token.any()


@pytest.mark.parametrize('shared', [False, True])
def test_masked_patches_hold_the_token_and_the_rest_the_image(shared):
    masker = PatchImageMasker(patch_size=4, mask_ratio=0.5, shared_across_views=shared)
    with torch.no_grad():
        masker.mask_token.copy_(torch.arange(48.0).view(3, 4, 4) + 100.0)
    imgs = torch.randn(2, 3, 3, 8, 12)  # (B, N_cam, 3, H, W): 2 x 3 patches per image
    out, mask = masker(imgs, torch.Generator().manual_seed(0))
    assert mask.shape == (2, 3, 2, 3) and mask.dtype == torch.bool
    assert mask.flatten(2).sum(-1).tolist() == [[3, 3, 3], [3, 3, 3]]  # 0.5 * 6 exactly
    _check_pixels(imgs, out, mask, masker.mask_token.detach(), 4)
    same_over_cams = all(torch.equal(mask[b, 0], mask[b, n]) for b in range(2) for n in range(3))
    if shared:
        assert same_over_cams
    # gradient of the token = sum of the output gradient over its masked patches
    out.sum().backward()
    assert torch.allclose(masker.mask_token.grad, torch.full((3, 4, 4), float(mask.sum())))


def test_any_leading_dims_independent_masks():
    masker = MIM4DImageMasker(cell_size=8, mask_ratio=0.25)
    imgs = torch.randn(1, 2, 3, 3, 16, 16)  # (B, S, N_cam, 3, H, W)
    out, mask = masker(imgs, torch.Generator().manual_seed(1))
    assert mask.shape == (1, 2, 3, 2, 2)
    assert (mask.flatten(3).sum(-1) == 1).all()  # 0.25 * 4 cells
    _check_pixels(imgs, out, mask, masker.mask_token.detach(), 8)


def test_refusals_name_the_fix():
    with pytest.raises(ValueError, match='pad_size_divisor to a multiple of 8'):
        NSMAEImageMasker()(torch.zeros(1, 2, 3, 12, 16), None)
    with pytest.raises(ValueError, match='mask_ratio'):
        PatchImageMasker(patch_size=8, mask_ratio=1.5)
    with pytest.raises(ValueError, match='N_cam'):
        PatchImageMasker(8, 0.5, shared_across_views=True)(torch.zeros(3, 8, 8), None)
