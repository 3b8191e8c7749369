"""Real spconv: an X,Y,Z conv and its converted Z,Y,X twin give the same output.

The weights go through the converter engine (NS-MAE X,Y,Z -> CenterPoint
Z,Y,X table) from a spconv 1.x-layout state dict, so the layout change and
the kernel-axis permutation are both exercised; the Z,Y,X convs see the
same voxels with their indices reversed.
"""
from collections import OrderedDict

import pytest
import torch

spconv = pytest.importorskip('spconv.pytorch')

from render_pretrain.converters import convert_state_dict, get_table  # noqa: E402
from tests.converters.fake_checkpoints import spconv2_to_spconv1  # noqa: E402

SHAPE_XYZ = (9, 7, 11)


def _voxels(gen, n=120, batch=2):
    """Unique voxel indices [N, 4] (batch, x, y, z) and features [N, 4]."""
    cells = torch.randperm(batch * SHAPE_XYZ[0] * SHAPE_XYZ[1] * SHAPE_XYZ[2], generator=gen)[:n]
    b, rest = cells // (SHAPE_XYZ[0] * SHAPE_XYZ[1] * SHAPE_XYZ[2]), cells % (
        SHAPE_XYZ[0] * SHAPE_XYZ[1] * SHAPE_XYZ[2])
    x, rest = rest // (SHAPE_XYZ[1] * SHAPE_XYZ[2]), rest % (SHAPE_XYZ[1] * SHAPE_XYZ[2])
    y, z = rest // SHAPE_XYZ[2], rest % SHAPE_XYZ[2]
    indices = torch.stack([b, x, y, z], dim=1).int()
    return indices, torch.randn(n, 4, generator=gen)


@torch.no_grad()
def test_xyz_conv_equals_converted_zyx_conv():
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    subm_xyz = spconv.SubMConv3d(4, 6, kernel_size=(3, 1, 5), padding=(1, 0, 2), bias=False,
                                 indice_key='a')
    down_xyz = spconv.SparseConv3d(6, 8, kernel_size=(1, 1, 3), stride=(1, 1, 2), bias=False)
    subm_zyx = spconv.SubMConv3d(4, 6, kernel_size=(5, 1, 3), padding=(2, 0, 1), bias=False,
                                 indice_key='a')
    down_zyx = spconv.SparseConv3d(6, 8, kernel_size=(3, 1, 1), stride=(2, 1, 1), bias=False)
    for conv in (subm_xyz, down_xyz):
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))

    # A spconv 1.x checkpoint of the X,Y,Z encoder (norm layers give C_out).
    source = OrderedDict([
        ('pts_middle_encoder.conv_input.0.weight', spconv2_to_spconv1(subm_xyz.weight)),
        ('pts_middle_encoder.conv_input.1.weight', torch.ones(6)),
        ('pts_middle_encoder.conv_out.0.weight', spconv2_to_spconv1(down_xyz.weight)),
        ('pts_middle_encoder.conv_out.1.weight', torch.ones(8)),
    ])
    result = convert_state_dict(source, get_table('nsmae', 'mmdet3d-centerpoint'),
                                ['pts_middle_encoder'])
    assert result.report.src_spconv_layout == 'spconv1'
    assert result.report.spconv_decided_by == 'shapes'
    subm_zyx.weight.copy_(result.state_dict['pts_middle_encoder.conv_input.0.weight'])
    down_zyx.weight.copy_(result.state_dict['pts_middle_encoder.conv_out.0.weight'])

    indices, feats = _voxels(gen)
    x_xyz = spconv.SparseConvTensor(feats, indices, list(SHAPE_XYZ), batch_size=2)
    x_zyx = spconv.SparseConvTensor(feats, indices[:, [0, 3, 2, 1]].contiguous(),
                                    list(SHAPE_XYZ[::-1]), batch_size=2)
    mid_xyz, mid_zyx = subm_xyz(x_xyz), subm_zyx(x_zyx)
    # Submanifold: outputs stay on the input voxels, in input order.
    assert torch.allclose(mid_xyz.features, mid_zyx.features, atol=1e-5)
    assert mid_xyz.features.abs().max() > 0.1
    out_xyz = down_xyz(mid_xyz).dense()  # [B, C, X', Y', Z']
    out_zyx = down_zyx(mid_zyx).dense()  # [B, C, Z', Y', X']
    assert out_zyx.shape[2:] == out_xyz.shape[2:][::-1]
    assert torch.allclose(out_xyz, out_zyx.permute(0, 1, 4, 3, 2), atol=1e-5)
    # Reshaping instead of permuting the kernel axes gives other features
    # (for (1, 1, 3) -> (3, 1, 1) a reshape happens to be the permutation).
    subm_zyx.weight.copy_(subm_xyz.weight.reshape(subm_zyx.weight.shape))
    assert not torch.allclose(mid_xyz.features, subm_zyx(x_zyx).features, atol=1e-2)
