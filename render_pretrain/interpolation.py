"""Trilinear interpolation of a voxel feature volume, written with gather ops.

The eikonal term of a NeuS field needs double backward through the
interpolation: the SDF gradient with respect to the sample points is itself
differentiated when the loss is back-propagated. ``F.grid_sample`` offers that
only in recent PyTorch releases (the MIM4D/UniPAD release needed a custom
CUDA ``SmoothSampler`` for it); the functions here compute the same values as
``F.grid_sample(volume, grid, mode='bilinear', padding_mode='zeros',
align_corners=...)`` with plain gather ops and arithmetic, so autograd can
differentiate them any number of times (with respect to the volume and the
points) with any PyTorch version and device, and the packed variant samples
each point from its own batch item without padding the point sets.

Coordinate convention (identical to ``grid_sample``):

* A volume has layout (B, C, Z, Y, X); a point is (x, y, z) with x indexing
  the last axis X, y the axis Y and z the axis Z.
* Normalised coordinates: -1 and +1 are the two ends of an axis.
  With ``align_corners=True`` they are the CENTRES of the first and last
  voxel. With ``align_corners=False`` they are the outer EDGES of the first
  and last voxel (voxel centres sit at (2 i + 1) / N - 1), which is the right
  choice for a voxel grid that tiles a metric box (the box edge is the grid
  edge); :func:`normalize_points_to_aabb` uses it by default.
* Out of bounds: corners outside the volume contribute zero, i.e.
  ``padding_mode='zeros'`` (a point half a voxel outside the last centre is
  blended with zeros; a point further than one voxel outside gets zero).

Fixed sample points (the NeuS field: samples carry no
gradient): :func:`trilinear_corner_weights` gives each point's 8 corner
rows in a channel-last volume (B, Z, Y, X, C) flattened to a (B * Z * Y * X,
C) table, with the trilinear weights and, optionally, the weights of the
spatial derivatives ``d value / d point`` (exact derivatives of the
piecewise-trilinear interpolant), and :func:`interpolate_table` applies them
(values and derivatives are linear in the table, so one backward pass
through them gives the gradient of any loss on the SDF gradient, no double
backward needed).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'trilinear_interpolate_packed', 'trilinear_interpolate', 'normalize_points_to_aabb',
    'trilinear_corner_weights', 'interpolate_table'
]

# Offsets (dz, dy, dx) of the 8 corners of a voxel cell.
_CORNERS = ((0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1),
            (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1))


def _check_packed_points(points: Tensor, batch_idx: Tensor) -> None:
    """Refuse packed points that are not (P, 3) with a (P,) batch index."""
    if points.dim() != 2 or points.shape[-1] != 3:
        raise ValueError(f'points must be (P, 3) ordered (x, y, z), '
                         f'got shape {tuple(points.shape)}')
    if batch_idx.shape != points.shape[:1]:
        raise ValueError(f'batch_idx must be (P,) = {tuple(points.shape[:1])}, '
                         f'got shape {tuple(batch_idx.shape)}')


def _unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    """Map normalised coordinates in [-1, 1] to continuous voxel indices."""
    if align_corners:
        return (coord + 1) * 0.5 * (size - 1)
    return ((coord + 1) * size - 1) * 0.5


def _index_scale(size: int, align_corners: bool) -> float:
    """d (continuous voxel index) / d (normalised coordinate) of :func:`_unnormalize`."""
    return 0.5 * (size - 1) if align_corners else 0.5 * size


def trilinear_interpolate_packed(volume: Tensor,
                                 points: Tensor,
                                 batch_idx: Tensor,
                                 align_corners: bool = False) -> Tensor:
    """Trilinearly interpolate a feature volume at packed points.

    Formula, per axis with continuous index ``i = floor(i) + f``:
    ``v = sum_{corners} prod_axes (f or 1 - f) * V[corner]``, corners outside
    the volume counting as zero.

    Differentiable (to any order) with respect to ``volume`` and ``points``;
    the gradient with respect to the points is piecewise polynomial and
    undefined exactly on voxel-centre planes (autograd then returns the
    one-sided value, like grid_sample).

    Args:
        volume (Tensor): Feature volume (B, C, Z, Y, X).
        points (Tensor): Normalised coordinates (P, 3) ordered (x, y, z), see
            the module docstring for the convention. Any float dtype; it is
            cast to the volume's dtype.
        batch_idx (Tensor): Batch item of each point (P,), int64 in [0, B).
        align_corners (bool): Same meaning as in ``F.grid_sample``.

    Returns:
        Tensor: Interpolated features (P, C), dtype and device of ``volume``.

    Example:
        >>> vol = torch.arange(8.).view(1, 1, 2, 2, 2)
        >>> pts = torch.tensor([[0., 0., 0.]])  # the centre of the cube
        >>> trilinear_interpolate_packed(vol, pts, torch.zeros(1).long(),
        ...                              align_corners=True)
        tensor([[3.5000]])
    """
    if volume.dim() != 5:
        raise ValueError(f'volume must be (B, C, Z, Y, X), got shape {tuple(volume.shape)}')
    _check_packed_points(points, batch_idx)
    bsz, channels, size_z, size_y, size_x = volume.shape
    points = points.to(volume.dtype)
    # One voxel of zeros around the volume implements padding_mode='zeros':
    # a point's continuous index is clamped into the padded range, so far
    # away points read 8 zero corners (value 0, gradient 0 as grid_sample).
    padded = F.pad(volume, (1, 1, 1, 1, 1, 1))
    pad_z, pad_y, pad_x = size_z + 2, size_y + 2, size_x + 2
    # Channel-last flat table: one row per (batch, z, y, x) padded voxel.
    table = padded.permute(0, 2, 3, 4, 1).reshape(bsz * pad_z * pad_y * pad_x, channels)

    sizes = (size_x, size_y, size_z)
    coords = [(_unnormalize(points[:, axis], sizes[axis], align_corners) + 1).clamp(
        0, sizes[axis] + 1) for axis in range(3)]
    bases = [coord.detach().floor().clamp(max=sizes[axis]) for axis, coord in enumerate(coords)]
    fracs = [coord - base for coord, base in zip(coords, bases)]
    base_x, base_y, base_z = (base.long() for base in bases)
    frac_x, frac_y, frac_z = fracs
    flat = ((batch_idx.long() * pad_z + base_z) * pad_y + base_y) * pad_x + base_x  # (P,)
    offsets = flat.new_tensor([(dz * pad_y + dy) * pad_x + dx for dz, dy, dx in _CORNERS])
    corner_idx = flat.unsqueeze(1) + offsets  # (P, 8), corner order of _CORNERS
    weight_z = torch.stack([1 - frac_z, frac_z], dim=-1)
    weight_y = torch.stack([1 - frac_y, frac_y], dim=-1)
    weight_x = torch.stack([1 - frac_x, frac_x], dim=-1)
    weights = (weight_z[:, :, None, None] * weight_y[:, None, :, None]
               * weight_x[:, None, None, :]).reshape(-1, 1, 8)
    values = table.index_select(0, corner_idx.reshape(-1)).view(-1, 8, channels)
    return torch.bmm(weights, values).squeeze(1)


def trilinear_interpolate(volume: Tensor, points: Tensor, align_corners: bool = False) -> Tensor:
    """Batched trilinear interpolation, equal to ``F.grid_sample`` (zeros padding).

    Args:
        volume (Tensor): Feature volume (B, C, Z, Y, X).
        points (Tensor): Normalised coordinates (B, P, 3) ordered (x, y, z).
        align_corners (bool): Same meaning as in ``F.grid_sample``.

    Returns:
        Tensor: Interpolated features (B, P, C). Equals
        ``F.grid_sample(volume, points.view(B, P, 1, 1, 3), mode='bilinear',
        padding_mode='zeros', align_corners=align_corners)`` reshaped to
        (B, P, C), and supports double backward.
    """
    if points.dim() != 3 or points.shape[-1] != 3 or points.shape[0] != volume.shape[0]:
        raise ValueError(f'points must be (B, P, 3) with B = {volume.shape[0]}, '
                         f'got shape {tuple(points.shape)}')
    bsz, num = points.shape[:2]
    batch_idx = torch.arange(bsz, device=points.device).repeat_interleave(num)
    out = trilinear_interpolate_packed(volume, points.reshape(bsz * num, 3), batch_idx,
                                       align_corners)
    return out.view(bsz, num, volume.shape[1])


def normalize_points_to_aabb(points: Tensor,
                             aabb: Tensor,
                             grid_size: Tuple[int, int, int] = None,
                             align_corners: bool = False) -> Tensor:
    """Map metric points to the normalised coordinates of a volume over an AABB.

    The volume is assumed to tile the axis-aligned box exactly: voxel i along
    x covers [x_min + i * dx, x_min + (i + 1) * dx] with
    dx = (x_max - x_min) / X, so its centre is at x_min + (i + 0.5) * dx.

    * ``align_corners=False`` (default): the box edges map to -1 / +1,
      ``n = 2 (p - min) / (max - min) - 1``; ``grid_size`` is not needed.
    * ``align_corners=True``: the first / last voxel centres map to -1 / +1,
      which needs ``grid_size``.

    Differentiable with respect to ``points`` (an affine map).

    Args:
        points (Tensor): Metric points (..., 3) ordered (x, y, z), metres, in
            the frame of the volume (e.g. lidar/ego frame).
        aabb (Tensor): Box (6,) or broadcastable (..., 6) ordered
            (x_min, y_min, z_min, x_max, y_max, z_max), metres.
        grid_size (tuple[int, int, int], optional): Volume size (Z, Y, X) (the
            volume's layout order); only used with ``align_corners=True``.
        align_corners (bool): Convention of the interpolation that follows.

    Returns:
        Tensor: Normalised coordinates (..., 3) ordered (x, y, z); inside the
        box means within [-1, 1] for ``align_corners=False``.

    Example:
        >>> aabb = torch.tensor([-54., -54., -5., 54., 54., 3.])
        >>> normalize_points_to_aabb(torch.tensor([[0., 27., 3.]]), aabb)
        tensor([[0.0000, 0.5000, 1.0000]])
    """
    if aabb.shape[-1] != 6:
        raise ValueError(f'aabb must be (..., 6) = (x_min, y_min, z_min, x_max, y_max, z_max), '
                         f'got shape {tuple(aabb.shape)}')
    aabb = aabb.to(points)
    lo, hi = aabb[..., :3], aabb[..., 3:]
    if align_corners:
        if grid_size is None:
            raise ValueError('grid_size (Z, Y, X) is required with align_corners=True')
        size_xyz = points.new_tensor([grid_size[2], grid_size[1], grid_size[0]])
        half = (hi - lo) / size_xyz * 0.5
        lo, hi = lo + half, hi - half
    return 2 * (points - lo) / (hi - lo) - 1


def trilinear_corner_weights(points: Tensor,
                             batch_idx: Tensor,
                             grid_size: Sequence[int],
                             align_corners: bool = False,
                             derivatives: bool = False) -> Tuple[Tensor, Tensor]:
    """Corner rows and trilinear weights of fixed points in a channel-last table.

    The table is the channel-last volume (B, Z, Y, X, C) reshaped to
    (B * Z * Y * X, C). With continuous voxel index ``u = floor(u) + f``
    per axis, the value weights are ``w = prod_axes (1 - f or f)`` over the
    8 corners (order (dz, dy, dx) = (0, 0, 0), (0, 0, 1), ..., (1, 1, 1));
    the derivative weights w.r.t. the normalised coordinate of axis ``a``
    replace that axis' factor by ``(-1 or +1) * du_a / dn_a`` (zero where
    the point is clamped, far outside the volume), i.e. the exact
    (one-sided on voxel-centre planes) derivative of the interpolant, as
    autograd gives for :func:`trilinear_interpolate_packed`. Corners outside
    the volume get weight 0 (and a clamped, valid row index), which is
    ``padding_mode='zeros'``.

    Not differentiable: the points are treated as constants.

    Args:
        points (Tensor): Normalised coordinates (P, 3) ordered (x, y, z).
        batch_idx (Tensor): Batch item of each point (P,), int64 in [0, B).
        grid_size (Sequence[int]): Volume size (Z, Y, X).
        align_corners (bool): Same meaning as in ``F.grid_sample``.
        derivatives (bool): Also return the derivative weights.

    Returns:
        tuple[Tensor, Tensor]: ``corner_idx`` (P, 8) int64 table rows, and
        ``weights`` (K, P, 8) in the points' dtype, K = 1 (value) or 4
        (value, d/dx, d/dy, d/dz with respect to the normalised coordinates).
        K leads so that each row k is contiguous.

    Example:
        >>> idx, w = trilinear_corner_weights(torch.zeros(1, 3), torch.zeros(1).long(),
        ...                                   (2, 2, 2), align_corners=True)
        >>> idx
        tensor([[0, 1, 2, 3, 4, 5, 6, 7]])
        >>> w[0, 0]
        tensor([0.1250, 0.1250, 0.1250, 0.1250, 0.1250, 0.1250, 0.1250, 0.1250])
    """
    _check_packed_points(points, batch_idx)
    if len(grid_size) != 3:
        raise ValueError(f'grid_size must be (Z, Y, X), got {tuple(grid_size)}')
    size_z, size_y, size_x = (int(v) for v in grid_size)
    points = points.detach()
    # Per axis, the two corners lie along a leading dim of 2 and the points
    # along the last (contiguous) dim, so the outer products below vectorise.
    factors, slopes, indices = [], [], []
    for axis, size in enumerate((size_x, size_y, size_z)):
        # Index in a volume padded by one zero voxel per side: far points
        # clamp into the padding, whose corners then weigh nothing.
        raw = _unnormalize(points[:, axis], size, align_corners) + 1
        coord = raw.clamp(0, size + 1)
        base = coord.floor().clamp(max=size)
        frac = coord - base
        corner = base.long() + torch.arange(2, device=points.device).unsqueeze(1)  # (2, P)
        inside = ((corner >= 1) & (corner <= size)).to(points.dtype)
        factors.append(torch.stack([1 - frac, frac]) * inside)
        if derivatives:
            scale = ((raw >= 0) & (raw <= size + 1)).to(points.dtype) * _index_scale(
                size, align_corners)
            slopes.append(torch.stack([-scale, scale]) * inside)
        indices.append((corner - 1).clamp(0, size - 1))
    index_x, index_y, index_z = indices
    row_z = batch_idx.long() * size_z + index_z  # (2, P)
    row_zy = row_z[:, None] * size_y + index_y[None, :]
    corner_idx = (row_zy[:, :, None] * size_x + index_x[None, None, :]).reshape(8, -1).t()
    w_x, w_y, w_z = factors
    if derivatives:
        s_x, s_y, s_z = slopes
        # Rows: value, d/dx, d/dy, d/dz (one axis factor replaced by its slope).
        f_z = torch.stack([w_z, w_z, w_z, s_z], dim=1)  # (2, K, P)
        f_y = torch.stack([w_y, w_y, s_y, w_y], dim=1)
        f_x = torch.stack([w_x, s_x, w_x, w_x], dim=1)
    else:
        f_z, f_y, f_x = w_z.unsqueeze(1), w_y.unsqueeze(1), w_x.unsqueeze(1)
    weights = f_z[:, None, None] * f_y[None, :, None] * f_x[None, None, :]  # (2, 2, 2, K, P)
    weights = weights.reshape(8, f_z.shape[1], -1).permute(1, 2, 0).contiguous()  # (K, P, 8)
    return corner_idx.contiguous(), weights


def _corner_rows(table: Tensor, corner_idx: Tensor) -> Tensor:
    """(P, 8, C) table rows of each point's 8 corners (a gather; its backward is index_add)."""
    return table.index_select(0, corner_idx.reshape(-1)).view(*corner_idx.shape, table.shape[1])


def _check_table_args(table: Tensor, corner_idx: Tensor, weights: Tensor, name: str) -> None:
    if table.dim() != 2:
        raise ValueError(f'table must be (N, C), got shape {tuple(table.shape)}')
    if corner_idx.dim() != 2 or corner_idx.shape[1] != 8:
        raise ValueError(f'corner_idx must be (P, 8), got shape {tuple(corner_idx.shape)}')
    if weights.dim() != 3 or weights.shape[1] != corner_idx.shape[0] or weights.shape[2] != 8:
        raise ValueError(f'weights must be (K, P, 8) with P = {corner_idx.shape[0]}, '
                         f'got shape {tuple(weights.shape)}')
    if weights.requires_grad:
        raise ValueError(f'{name} is not differentiable w.r.t. weights; use '
                         'trilinear_interpolate_packed for gradients w.r.t. the points')


def interpolate_table(table: Tensor,
                      corner_idx: Tensor,
                      weights: Tensor,
                      derivative_channels: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Trilinear values (and spatial derivatives) of fixed points from a row table.

    ``value[p] = sum_j weights[0, p, j] table[corner_idx[p, j]]`` and
    ``deriv[a, p] = sum_j weights[1 + a, p, j] table[corner_idx[p, j], :D]``
    (a gather of the corner rows and weighted sums). Both are linear in
    the table, so a loss on the derivatives (the eikonal term, the NeuS cos
    term) is back-propagated to the table in one ordinary backward pass.

    Differentiable w.r.t. ``table`` only (not ``weights``: the points are
    constants); for gradients w.r.t. the points use
    :func:`trilinear_interpolate_packed`.

    Args:
        table (Tensor): (N, C) rows of a channel-last volume (B, Z, Y, X, C).
        corner_idx (Tensor): (P, 8) int64 rows, from
            :func:`trilinear_corner_weights`.
        weights (Tensor): (K, P, 8) value (k = 0) and derivative weights.
        derivative_channels (int, optional): D, the leading channels whose
            derivatives are computed (default: all C).

    Returns:
        tuple[Tensor, Tensor]: values (P, C) and derivatives (K - 1, P, D)
        with respect to the normalised coordinates (x, y, z).
    """
    _check_table_args(table, corner_idx, weights, 'interpolate_table')
    channels = table.shape[1]
    derivative_channels = channels if derivative_channels is None else int(derivative_channels)
    if not 0 <= derivative_channels <= channels:
        raise ValueError(f'derivative_channels must be in [0, {channels}], '
                         f'got {derivative_channels}')
    weights = weights.to(table.dtype)
    rows = _corner_rows(table, corner_idx)
    values = (weights[0].unsqueeze(-1) * rows).sum(1)
    derivs = (weights[1:].unsqueeze(-1) * rows[..., :derivative_channels]).sum(2)
    return values, derivs
