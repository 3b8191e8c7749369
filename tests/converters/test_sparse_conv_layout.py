"""Sparse-conv layouts: permutes against einsums, detection, ambiguity."""
import pytest
import torch

from render_pretrain.converters import ConversionError
from render_pretrain.converters.sparse_conv_layout import (
    SparseConvShapeHint, candidate_layouts, decide_spconv_layout, from_spconv2,
    kernel_axis_permutation, permute_kernel_axes, to_spconv2)


def _weight(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_layout_round_trip_matches_einsum():
    w1 = _weight((1, 1, 3, 4, 6))  # spconv1 [kx, ky, kz, in, out]
    w2 = to_spconv2(w1, 'mmcv')
    assert w2.shape == (6, 1, 1, 3, 4)
    assert torch.equal(w2, torch.einsum('abcio->oabci', w1))
    assert torch.equal(from_spconv2(w2, 'spconv1'), w1)
    assert to_spconv2(w2, 'spconv2') is w2


def test_kernel_axes_xyz_to_zyx_matches_einsum():
    w = _weight((6, 1, 2, 3, 4))  # [out, kx, ky, kz, in]
    zyx = permute_kernel_axes(w, 'xyz', 'zyx')
    assert zyx.shape == (6, 3, 2, 1, 4)
    assert torch.equal(zyx, torch.einsum('oxyzi->ozyxi', w))
    assert torch.equal(permute_kernel_axes(zyx, 'zyx', 'xyz'), w)
    assert kernel_axis_permutation('xyz', 'zyx') == (2, 1, 0)
    with pytest.raises(ConversionError, match='axis order'):
        kernel_axis_permutation('xyz', 'xxz')


def test_candidates_cubic_equal_channels():
    only_out = SparseConvShapeHint(out_channels=16)
    # spconv2 [16,3,3,3,16] also reads as spconv1 with kernel (16,3,3), in 3.
    assert candidate_layouts((16, 3, 3, 3, 16), only_out) == {'spconv1', 'spconv2'}
    both = SparseConvShapeHint(out_channels=16, in_channels=16)
    assert candidate_layouts((16, 3, 3, 3, 16), both) == {'spconv2'}
    assert candidate_layouts((3, 3, 3, 16, 16), both) == {'spconv1'}
    assert candidate_layouts((3, 3, 3, 16, 16), SparseConvShapeHint(out_channels=32)) == set()
    kernel = SparseConvShapeHint(16, 5, (1, 1, 3))
    assert candidate_layouts((16, 1, 1, 3, 5), kernel) == {'spconv2'}
    assert candidate_layouts((16, 3, 1, 1, 5), kernel) == set()


def test_decide_layout():
    hint = SparseConvShapeHint(out_channels=16)
    ambiguous = {'enc.conv.weight': ((16, 3, 3, 3, 16), hint)}
    with pytest.raises(ConversionError, match='--src-spconv-layout'):
        decide_spconv_layout(ambiguous)
    assert decide_spconv_layout(ambiguous, 'spconv1', 'flag') == ('spconv1', 'flag')
    assert decide_spconv_layout(ambiguous, fallback='spconv2', fallback_by='default') == (
        'spconv2', 'default')
    decided = dict(ambiguous, **{'enc.conv0.weight': ((3, 3, 3, 5, 16), hint)})
    assert decide_spconv_layout(decided) == ('spconv1', 'shapes')
    with pytest.raises(ConversionError, match='only fit'):
        decide_spconv_layout(decided, 'spconv2', 'meta')
    mixed = {'a.weight': ((16, 3, 3, 3, 5), hint), 'b.weight': ((3, 3, 3, 5, 16), hint)}
    with pytest.raises(ConversionError, match='disagree'):
        decide_spconv_layout(mixed)
    with pytest.raises(ConversionError, match='fits neither'):
        decide_spconv_layout({'c.weight': ((8, 3, 3, 3, 8), hint)})
    with pytest.raises(ConversionError, match='unknown sparse-conv weight layout'):
        decide_spconv_layout(ambiguous, 'spconv3')
