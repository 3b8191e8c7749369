"""Differentiable resampling of a BEV feature map onto another metric grid.

BEVFusion's map-segmentation head (mit-han-lab/bevfusion,
``mmdet3d/models/heads/segm/vanilla.py``, ``BEVGridTransform``) resamples
the decoder's BEV map, e.g. ``input_scope = [[-51.2, 51.2, 0.8]] * 2``
(128 x 128 cells), onto the label grid ``output_scope = [[-50, 50, 0.5]] * 2``
(200 x 200 cells) by bilinear ``grid_sample`` with ``align_corners=False``.
The same geometry is written here as a pure function plus a parameter-free
module whose sampling grid is a non-persistent buffer.

A scope is ``((x_min, x_max, x_step), (y_min, y_max, y_step))`` in metres,
LiDAR frame. Cell ``i`` of an axis covers ``[min + i * step, min + (i + 1) *
step)`` and its centre is ``min + (i + 0.5) * step``. Output cell centres
are mapped to the input's normalised coordinates
``u = (c - in_min) / (in_max - in_min) * 2 - 1``: with
``align_corners=False``, ``u = -1`` / ``+1`` are the outer edges of the
input's first / last cell, so every input cell centre sits exactly on its
metric position and resampling onto the input's own scope is the identity.
Output cells whose centre lies outside the input scope get zeros
(``padding_mode='zeros'``), as in BEVFusion.

Axis order: the output is always ``[B, C, X_out, Y_out]`` (first spatial
axis = LiDAR x), the layout of the map labels (``[class, ix, iy]``, see
:mod:`render_pretrain.nuscenes_infos.map_labels`) and of BEVFusion's BEV
maps. The input may be ``'xy'`` ([B, C, X, Y], BEVFusion / NS-MAE
``bev_axes='xy'``) or ``'yx'`` ([B, C, Y, X], mmdet3d ``SparseEncoder`` /
CenterPoint).
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['BEVGridTransform', 'bev_cell_centres', 'bev_sampling_grid', 'resample_bev']

Scope = Sequence[Sequence[float]]


def _check_scope(scope: Scope, name: str) -> Tuple[Tuple[float, float, float], ...]:
    """Validate a ((min, max, step), (min, max, step)) scope."""
    if len(scope) != 2 or any(len(axis) != 3 for axis in scope):
        raise ValueError(f'{name} must be ((x_min, x_max, x_step), (y_min, y_max, y_step)) '
                         f'in metres, got {scope!r}')
    out = tuple(tuple(float(v) for v in axis) for axis in scope)
    for (low, high, step), axis in zip(out, 'xy'):
        if not (high > low and step > 0):
            raise ValueError(f'{name}: {axis} axis needs max > min and step > 0, '
                             f'got {(low, high, step)}')
    return out


def bev_cell_centres(low: float, high: float, step: float,
                     device=None, dtype=torch.float32) -> Tensor:
    """Centres of the cells of one axis of a BEV scope.

    Example:
        >>> bev_cell_centres(-1.0, 1.0, 0.5).tolist()
        [-0.75, -0.25, 0.25, 0.75]

    Args:
        low, high (float): Axis extent in metres; cells cover [low, high).
        step (float): Cell size in metres.

    Returns:
        Tensor: (N,) cell centres in metres, ``N = round((high - low) / step)``.
    """
    num = int(round((high - low) / step))
    if num <= 0:
        raise ValueError(f'scope ({low}, {high}, {step}) has no cell')
    return low + step * (torch.arange(num, device=device, dtype=dtype) + 0.5)


def bev_sampling_grid(input_scope: Scope, output_scope: Scope, input_axes: str = 'xy',
                      device=None, dtype=torch.float32) -> Tensor:
    """``grid_sample`` grid that maps output cell centres into the input map.

    Args:
        input_scope (Scope): ((x_min, x_max, x_step), (y_min, y_max, y_step))
            of the input map, metres (only min and max are used).
        output_scope (Scope): Same for the output grid.
        input_axes (str): ``'xy'`` if the input is [.., X, Y], ``'yx'`` if
            it is [.., Y, X].

    Returns:
        Tensor: (X_out, Y_out, 2) normalised sampling coordinates; entry
        ``[i, j]`` holds (u_W, u_H), the position of output cell (x_i, y_j)
        along the input's last and second-to-last axes, in [-1, 1] inside
        the input.
    """
    if input_axes not in ('xy', 'yx'):
        raise ValueError(f"input_axes must be 'xy' or 'yx', got {input_axes!r}")
    in_scope = _check_scope(input_scope, 'input_scope')
    out_scope = _check_scope(output_scope, 'output_scope')
    normalised = []
    for (in_low, in_high, _), (out_low, out_high, out_step) in zip(in_scope, out_scope):
        centres = bev_cell_centres(out_low, out_high, out_step, device=device, dtype=dtype)
        normalised.append((centres - in_low) / (in_high - in_low) * 2 - 1)
    u_x, u_y = torch.meshgrid(normalised[0], normalised[1], indexing='ij')  # (X_out, Y_out)
    # grid_sample's last grid entry indexes dim -2 (H), the first dim -1 (W).
    if input_axes == 'xy':
        return torch.stack([u_y, u_x], dim=-1)
    return torch.stack([u_x, u_y], dim=-1)


def resample_bev(bev: Tensor, input_scope: Scope, output_scope: Scope,
                 input_axes: str = 'xy', mode: str = 'bilinear') -> Tensor:
    """Resample a BEV map from its metric scope onto another (differentiable).

    ``out[b, c, i, j] = bilinear(bev[b, c], x_i, y_j)`` with (x_i, y_j) the
    centre of output cell (i, j); zero outside the input scope. Gradients
    flow to ``bev`` (not to the scopes).

    Example:
        >>> bev = torch.arange(4.).view(1, 1, 2, 2)   # [B, C, X, Y]
        >>> resample_bev(bev, [[-1, 1, 1], [-1, 1, 1]],
        ...              [[-1, 1, 1], [-1, 1, 1]]).flatten().tolist()
        [0.0, 1.0, 2.0, 3.0]

    Args:
        bev (Tensor): [B, C, X_in, Y_in] (``input_axes='xy'``) or
            [B, C, Y_in, X_in] (``'yx'``) features.
        input_scope (Scope): Metric scope of ``bev`` (LiDAR frame, metres).
        output_scope (Scope): Metric scope of the output grid.
        input_axes (str): Layout of ``bev``: ``'xy'`` or ``'yx'``.
        mode (str): ``'bilinear'`` or ``'nearest'``.

    Returns:
        Tensor: [B, C, X_out, Y_out] (first spatial axis = LiDAR x).
    """
    if bev.dim() != 4:
        raise ValueError(f'bev must be [B, C, H, W], got {tuple(bev.shape)}')
    grid = bev_sampling_grid(input_scope, output_scope, input_axes, bev.device, bev.dtype)
    return _sample(bev, grid, mode)


def _sample(bev: Tensor, grid: Tensor, mode: str) -> Tensor:
    """grid_sample a batch with one shared (X_out, Y_out, 2) grid."""
    batch_grid = grid.to(bev.dtype).unsqueeze(0).expand(bev.shape[0], -1, -1, -1)
    return F.grid_sample(bev, batch_grid, mode=mode, padding_mode='zeros',
                         align_corners=False)


class BEVGridTransform(nn.Module):
    """Parameter-free BEV resampling with a cached grid (BEVFusion's).

    Holds no parameters, so its state dict is empty (as in mit-han-lab's
    ``BEVGridTransform``, whose head keys are only ``classifier.*``). The
    sampling grid is a non-persistent buffer.

    Args:
        input_scope (Scope): ((x_min, x_max, x_step), (y_min, y_max, y_step))
            of the input BEV map, metres.
        output_scope (Scope): Same for the output grid.
        input_axes (str): ``'xy'`` ([B, C, X, Y]) or ``'yx'`` ([B, C, Y, X]).
        mode (str): ``'bilinear'`` (BEVFusion) or ``'nearest'``.
    """

    def __init__(self, input_scope: Scope, output_scope: Scope, input_axes: str = 'xy',
                 mode: str = 'bilinear') -> None:
        super().__init__()
        if mode not in ('bilinear', 'nearest'):
            raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
        self.input_scope = _check_scope(input_scope, 'input_scope')
        self.output_scope = _check_scope(output_scope, 'output_scope')
        self.input_axes = input_axes
        self.mode = mode
        self.input_shape = tuple(int(round((high - low) / step))
                                 for low, high, step in self.input_scope)
        if input_axes == 'yx':
            self.input_shape = self.input_shape[::-1]
        self.register_buffer(
            'grid', bev_sampling_grid(self.input_scope, self.output_scope, input_axes),
            persistent=False)

    @property
    def output_shape(self) -> Tuple[int, int]:
        """(X_out, Y_out) cells of the output grid."""
        return tuple(self.grid.shape[:2])

    def forward(self, bev: Tensor) -> Tensor:
        """Resample ``bev`` [B, C, *input_shape] -> [B, C, X_out, Y_out].

        Raises:
            ValueError: The spatial size of ``bev`` differs from the one its
                input scope implies (the scope would be read wrongly).
        """
        if bev.dim() != 4 or tuple(bev.shape[-2:]) != self.input_shape:
            raise ValueError(
                f'BEVGridTransform: input scope {self.input_scope} ({self.input_axes}) '
                f'implies a [B, C, {self.input_shape[0]}, {self.input_shape[1]}] map, got '
                f'{tuple(bev.shape)}')
        return _sample(bev, self.grid, self.mode)

    def extra_repr(self) -> str:
        return (f'input_scope={self.input_scope}, output_scope={self.output_scope}, '
                f'input_axes={self.input_axes!r}, mode={self.mode!r}')
