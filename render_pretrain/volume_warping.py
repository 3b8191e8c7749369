"""Rigid warp of a voxel volume from one ego/LiDAR frame into another.

MIM4D lifts every sweep into a voxel volume in that sweep's own ego frame and
warps the other sweeps into the target sweep's frame before the temporal
predictor. The warp must act on METRIC coordinates: each target voxel
CENTRE ``p_t`` (metres) is mapped to the source frame,
``p_s = target2source @ p_t``, and the source volume is trilinearly
resampled there (zeros outside). The released MIM4D code applied the
transform to voxel indices, which is wrong as soon as voxels are not cubes
or the rotation/translation is expressed in metres.

Conventions:

* Volumes are (B, C, Z, Y, X) and tile the box ``aabb`` = (x_min, y_min,
  z_min, x_max, y_max, z_max) metres in their own frame; voxel (k, j, i)
  has its centre at ``min + (index + 0.5) * voxel_size``. Source and target
  volumes share the grid (same box, same shape) in their respective frames.
* ``target2source`` (B, 4, 4) maps homogeneous metric points of the target
  frame to the source frame. From ego poses (ego -> global)
  ``target2source = inv(source2global) @ target2global``, see
  :func:`relative_transform`.
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .interpolation import normalize_points_to_aabb

__all__ = ['relative_transform', 'voxel_centers', 'warp_volume']


def relative_transform(source2global: Tensor, target2global: Tensor) -> Tensor:
    """``target2source = inv(source2global) @ target2global``.

    Args:
        source2global (Tensor): (..., 4, 4) pose of the source frame (e.g.
            ego of the previous sweep -> global), metres.
        target2global (Tensor): (..., 4, 4) pose of the target frame.

    Returns:
        Tensor: (..., 4, 4) target -> source transform.
    """
    return torch.linalg.inv(source2global) @ target2global


def voxel_centers(aabb: Tensor, grid_size: Tuple[int, int, int]) -> Tensor:
    """Metric centres of the voxels of a grid tiling ``aabb``.

    Args:
        aabb (Tensor): (6,) box (x_min, y_min, z_min, x_max, y_max, z_max), metres.
        grid_size (tuple[int, int, int]): (Z, Y, X).

    Returns:
        Tensor: (Z, Y, X, 3) centres ordered (x, y, z), metres; dtype and
        device of ``aabb``.

    Example:
        >>> voxel_centers(torch.tensor([0., 0., 0., 2., 1., 1.]), (1, 1, 2))[0, 0]
        tensor([[0.5000, 0.5000, 0.5000],
                [1.5000, 0.5000, 0.5000]])
    """
    size_z, size_y, size_x = (int(s) for s in grid_size)
    lo, hi = aabb[:3], aabb[3:]
    axes = []
    for axis, num in enumerate((size_x, size_y, size_z)):
        step = (hi[axis] - lo[axis]) / num
        index = torch.arange(num, dtype=aabb.dtype, device=aabb.device)
        axes.append(lo[axis] + step * (index + 0.5))
    zz, yy, xx = torch.meshgrid(axes[2], axes[1], axes[0], indexing='ij')
    return torch.stack([xx, yy, zz], dim=-1)


def warp_volume(volume: Tensor,
                target2source: Tensor,
                aabb: Union[Tensor, Sequence[float]],
                valid_margin: float = 1e-4) -> Tuple[Tensor, Tensor]:
    """Resample a source-frame volume on the target frame's voxel centres.

    ``out[b, :, k, j, i] = trilinear(volume[b], target2source[b] @ centre(k, j, i))``
    with ``F.grid_sample`` (``align_corners=False``, zeros padding), where
    the box edges are the normalised -1 / +1.

    The validity mask marks target voxels whose source position lies within
    the hull of the source voxel CENTRES (per axis, with a tolerance of
    ``valid_margin`` voxels), i.e. whose value is interpolated
    from real voxels only and not blended with the zero padding.

    Differentiable w.r.t. ``volume`` (and ``target2source``).

    Args:
        volume (Tensor): (B, C, Z, Y, X) source volume over ``aabb`` in the
            source frame.
        target2source (Tensor): (B, 4, 4) or (4, 4) rigid transform, metres.
        aabb (Tensor | Sequence[float]): (6,) box tiled by both volumes in
            their own frames, metres.
        valid_margin (float): Tolerance of the overlap test, in voxels.

    Returns:
        tuple[Tensor, Tensor]: warped volume (B, C, Z, Y, X) in the target
        frame, and valid (B, 1, Z, Y, X) bool.

    Example:
        A translation by exactly one voxel along x (target = source moved
        +dx) shifts the volume by one index: ``out[..., i] = volume[..., i + 1]``
        and the last column is invalid.
    """
    if volume.dim() != 5:
        raise ValueError(f'volume must be (B, C, Z, Y, X), got {tuple(volume.shape)}')
    bsz = volume.shape[0]
    if target2source.shape == (4, 4):
        target2source = target2source.expand(bsz, 4, 4)
    if target2source.shape != (bsz, 4, 4):
        raise ValueError(f'target2source must be (B, 4, 4) or (4, 4) with B = {bsz}, '
                         f'got {tuple(target2source.shape)}')
    aabb = torch.as_tensor(aabb)
    if aabb.shape != (6,):
        raise ValueError(f'aabb must be (6,) = (x_min, y_min, z_min, x_max, y_max, z_max), '
                         f'got {tuple(aabb.shape)}')
    grid_size = volume.shape[2:]
    aabb = aabb.to(volume)
    centers = voxel_centers(aabb, grid_size).reshape(1, -1, 3)  # (1, Z*Y*X, 3)
    transform = target2source.to(volume)
    source = centers @ transform[:, :3, :3].transpose(1, 2) + transform[:, None, :3, 3]
    normalized = normalize_points_to_aabb(source, aabb)  # (B, Z*Y*X, 3)
    grid = normalized.view((bsz,) + tuple(grid_size) + (3,))
    warped = F.grid_sample(volume, grid, mode='bilinear', padding_mode='zeros',
                           align_corners=False)
    # Hull of the voxel centres: |n| <= 1 - 1/N per axis (N voxels along it).
    size_xyz = normalized.new_tensor([grid_size[2], grid_size[1], grid_size[0]])
    limit = 1 - (1 - 2 * valid_margin) / size_xyz
    valid = (normalized.detach().abs() <= limit).all(dim=-1)
    return warped, valid.view((bsz, 1) + tuple(grid_size))
