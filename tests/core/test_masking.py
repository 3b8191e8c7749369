import doctest

import pytest
import torch

import render_pretrain.masking as masking_module
from render_pretrain.masking import (apply_mask_token, generate_patch_mask, num_masked,
                                     random_subset_mask, upsample_patch_mask)


@pytest.mark.parametrize('ratio,count', [(0.0, 0), (0.3, 317), (0.5, 528), (1.0, 1056)])
def test_patch_mask_exact_count(ratio, count, device):
    # 96 x 176 pixels, 8-pixel patches: 12 x 22 = 264 patches per image;
    # 0.3 * 264 = 79.2 -> 79 masked patches
    gen = torch.Generator().manual_seed(0)
    mask = generate_patch_mask(4, (96, 176), 8, ratio, gen, device=device)
    assert mask.device.type == device
    assert mask.shape == (4, 12, 22) and mask.dtype == torch.bool
    assert mask.flatten(1).sum(1).tolist() == [count // 4] * 4
    assert num_masked(264, ratio) == count // 4


def test_patch_mask_shared_vs_independent_and_deterministic():
    gen = torch.Generator().manual_seed(5)
    independent = generate_patch_mask(6, (64, 64), 8, 0.5, gen)
    assert len({tuple(m.flatten().tolist()) for m in independent}) == 6
    shared = generate_patch_mask(6, (64, 64), 8, 0.5, torch.Generator().manual_seed(5),
                                 shared_across=3)
    assert torch.equal(shared[0], shared[1]) and torch.equal(shared[0], shared[2])
    assert torch.equal(shared[3], shared[5]) and not torch.equal(shared[0], shared[3])
    again = generate_patch_mask(6, (64, 64), 8, 0.5, torch.Generator().manual_seed(5))
    assert torch.equal(again, independent)
    with pytest.raises(ValueError, match='divide'):
        generate_patch_mask(6, (64, 64), 8, 0.5, gen, shared_across=4)
    with pytest.raises(ValueError, match='divisible'):
        generate_patch_mask(6, (60, 64), 8, 0.5, gen)
    with pytest.raises(ValueError, match='ratio'):
        generate_patch_mask(6, (64, 64), 8, 1.5, gen)


def test_patch_mask_is_uniform_over_positions():
    mask = generate_patch_mask(4000, (16, 16), 8, 0.5, torch.Generator().manual_seed(1))
    freq = mask.float().mean(0)  # each of the 4 patches masked with probability 1/2
    assert torch.allclose(freq, torch.full((2, 2), 0.5), atol=0.03)


def test_apply_mask_token_only_in_masked_patches(device):
    gen = torch.Generator().manual_seed(2)
    images = torch.randn(2, 3, 3, 16, 24, generator=gen).to(device)  # (B, N, C, H, W)
    images.requires_grad_()
    before = images.detach().clone()
    mask = generate_patch_mask(6, (16, 24), 8, 0.5, gen, device=device).view(2, 3, 2, 3)
    token = torch.randn(3, 8, 8, generator=gen).to(device).requires_grad_()
    out = apply_mask_token(images, mask, token)
    assert torch.equal(images.detach(), before)  # input not modified
    pixel = upsample_patch_mask(mask, 8)
    assert pixel.shape == (2, 3, 16, 24)
    for b in range(2):
        for n in range(3):
            for i in range(2):
                for j in range(3):
                    patch = out[b, n, :, 8 * i:8 * i + 8, 8 * j:8 * j + 8]
                    src = before[b, n, :, 8 * i:8 * i + 8, 8 * j:8 * j + 8]
                    assert torch.equal(patch, token.detach() if mask[b, n, i, j] else src)
    out.sum().backward()
    # the token's gradient counts the masked patches; images get 0 under the mask
    assert torch.allclose(token.grad, torch.full_like(token, float(mask.sum())))
    assert torch.equal(images.grad, (~pixel).float().unsqueeze(2).expand_as(images))
    with pytest.raises(ValueError, match='images must have shape'):
        apply_mask_token(images, mask, torch.zeros(3, 4, 4, device=device))


def test_random_subset_mask_exact_and_deterministic():
    for num, ratio, count in [(1000, 0.9, 900), (7, 0.5, 4), (0, 0.9, 0), (5, 0.0, 0), (5, 1.0, 5)]:
        mask = random_subset_mask(num, ratio, torch.Generator().manual_seed(3))
        assert mask.shape == (num, ) and int(mask.sum()) == count
    a = random_subset_mask(50, 0.3, torch.Generator().manual_seed(4))
    b = random_subset_mask(50, 0.3, torch.Generator().manual_seed(4))
    c = random_subset_mask(50, 0.3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_docstring_examples():
    result = doctest.testmod(masking_module, extraglobs={'torch': torch})
    assert result.attempted > 0 and result.failed == 0
