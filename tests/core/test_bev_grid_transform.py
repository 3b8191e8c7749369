"""BEV grid transform: metric cell centres land where they should."""
import doctest

import pytest
import torch

import render_pretrain.bev_grid_transform as module
from render_pretrain.bev_grid_transform import (BEVGridTransform, bev_cell_centres,
                                                bev_sampling_grid, resample_bev)

BEVFUSION_IN = [[-51.2, 51.2, 0.8], [-51.2, 51.2, 0.8]]
BEVFUSION_OUT = [[-50.0, 50.0, 0.5], [-50.0, 50.0, 0.5]]


def _xy_pattern(num_x: int, num_y: int, device='cpu') -> torch.Tensor:
    """[1, 2, X, Y]: channel 0 = ix, channel 1 = iy (distinguishes the axes)."""
    ix, iy = torch.meshgrid(torch.arange(num_x, dtype=torch.float64, device=device),
                            torch.arange(num_y, dtype=torch.float64, device=device),
                            indexing='ij')
    return torch.stack([ix, iy]).unsqueeze(0)


def test_identity_on_own_scope_both_layouts(device):
    bev = _xy_pattern(4, 6, device)
    scope = [[-2.0, 2.0, 1.0], [-3.0, 3.0, 1.0]]
    torch.testing.assert_close(resample_bev(bev, scope, scope), bev, rtol=0, atol=1e-12)
    # the same map stored [.., Y, X] gives the same [.., X, Y] output
    out = resample_bev(bev.transpose(2, 3), scope, scope, input_axes='yx')
    torch.testing.assert_close(out, bev, rtol=0, atol=1e-12)


def test_upsampling_puts_input_cells_under_the_right_output_cells(device):
    # input: 1 m cells over x in [-2, 2), y in [-3, 3); output: 0.5 m cells.
    bev = _xy_pattern(4, 6, device)
    out = resample_bev(bev, [[-2, 2, 1.0], [-3, 3, 1.0]], [[-2, 2, 0.5], [-3, 3, 0.5]],
                       mode='nearest')
    assert out.shape == (1, 2, 8, 12)
    # output cell (i, j) has centre (-2 + 0.25 + 0.5 i, -3 + 0.25 + 0.5 j): input (i // 2, j // 2)
    i, j = torch.meshgrid(torch.arange(8, device=device), torch.arange(12, device=device),
                          indexing='ij')
    assert torch.equal(out[0, 0], (i // 2).double()) and torch.equal(out[0, 1], (j // 2).double())
    # bilinear: output centre x = -1.75 lies a quarter cell left of input centre -1.5
    lin = resample_bev(bev, [[-2, 2, 1.0], [-3, 3, 1.0]], [[-2, 2, 0.5], [-3, 3, 0.5]])
    assert lin[0, 0, 2, 5].item() == pytest.approx(0.75)  # x = -0.75: between ix 0 and 1
    assert lin[0, 1, 2, 5].item() == pytest.approx(2.25)  # y = -0.25: between iy 2 and 3


def test_bevfusion_scopes_marker_lands_in_expected_cell(device):
    # one hot input cell at 0.8 m (BEVFusion decoder) -> label grid 0.5 m
    bev = torch.zeros(1, 1, 128, 128, device=device)
    ix, iy = 70, 20  # centre x = -51.2 + 70.5 * 0.8 = 5.2 m, y = -51.2 + 20.5 * 0.8 = -34.8 m
    bev[0, 0, ix, iy] = 1.0
    out = BEVGridTransform(BEVFUSION_IN, BEVFUSION_OUT).to(device)(bev)
    assert out.shape == (1, 1, 200, 200)
    peak = divmod(int(out.flatten().argmax()), 200)
    # output cell containing (5.2, -34.8): floor((5.2 + 50) / 0.5), floor((-34.8 + 50) / 0.5)
    assert peak == (110, 30)
    # the marker stays near its metric position: all mass within 0.8 m of it
    cx = bev_cell_centres(-50, 50, 0.5, device=device)
    near_x = (cx - 5.2).abs() < 0.8
    near_y = (cx + 34.8).abs() < 0.8
    assert out[0, 0][~near_x].abs().sum() == 0 and out[0, 0][:, ~near_y].abs().sum() == 0


def test_outside_input_scope_is_zero_and_yx_layout(device):
    bev = torch.ones(2, 3, 10, 20, device=device)  # [B, C, Y, X]: y in [-5, 5), x in [-10, 10)
    transform = BEVGridTransform([[-10, 10, 1.0], [-5, 5, 1.0]], [[-10, 10, 1.0], [-10, 10, 1.0]],
                                 input_axes='yx').to(device)
    out = transform(bev)
    assert out.shape == (2, 3, 20, 20)
    assert torch.all(out[:, :, :, 5:15] == 1) and torch.all(out[:, :, :, :5] == 0)
    assert torch.all(out[:, :, :, 15:] == 0)
    assert transform.state_dict() == {}  # grid is a non-persistent buffer
    with pytest.raises(ValueError, match='implies a'):
        transform(torch.ones(1, 3, 20, 10, device=device))


def test_grid_values_and_gradcheck(device):
    grid = bev_sampling_grid([[-1, 1, 1.0], [-2, 2, 1.0]], [[-1, 1, 1.0], [-2, 2, 1.0]],
                             device=device)
    assert grid.shape == (2, 4, 2)
    # entry [i, j] = (u along Y (last dim), u along X)
    assert grid[0, 0].tolist() == [-0.75, -0.5] and grid[1, 3].tolist() == [0.75, 0.5]
    bev = torch.randn(1, 2, 3, 4, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: resample_bev(x, [[-1.5, 1.5, 1], [-2, 2, 1]], [[-1, 1.3, 0.37], [-2, 2, 0.7]]),
        (bev, ))
    with pytest.raises(ValueError, match='output_scope'):
        resample_bev(bev, [[-1.5, 1.5, 1], [-2, 2, 1]], [[1, -1, 0.5], [-2, 2, 1]])


def test_docstring_examples():
    assert doctest.testmod(module, extraglobs={'torch': torch}).failed == 0
