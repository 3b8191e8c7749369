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
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['trilinear_interpolate_packed', 'trilinear_interpolate', 'normalize_points_to_aabb']

# Offsets (dz, dy, dx) of the 8 corners of a voxel cell.
_CORNERS = ((0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1),
            (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1))


def _unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    """Map normalised coordinates in [-1, 1] to continuous voxel indices."""
    if align_corners:
        return (coord + 1) * 0.5 * (size - 1)
    return ((coord + 1) * size - 1) * 0.5


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
    if points.dim() != 2 or points.shape[-1] != 3:
        raise ValueError(f'points must be (P, 3) ordered (x, y, z), '
                         f'got shape {tuple(points.shape)}')
    if batch_idx.shape != points.shape[:1]:
        raise ValueError(f'batch_idx must be (P,) = {tuple(points.shape[:1])}, '
                         f'got shape {tuple(batch_idx.shape)}')
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
