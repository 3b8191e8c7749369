"""One voxel grid, the value every grid description is derived from.

A :class:`VoxelGrid` is a box of ``shape = (X, Y, Z)`` cells of
``voxel_size = (dx, dy, dz)`` metres whose lower corner is ``lower = (x, y,
z)`` metres, in the (augmented) LiDAR frame. Axes are always listed x, y, z.
The libraries this project is compatible with describe the same grid in six
ways; each is a derived value here:

* mmdet3d ``point_cloud_range`` + ``voxel_size``: :meth:`VoxelGrid.from_range`,
  :attr:`VoxelGrid.point_cloud_range`, :attr:`VoxelGrid.voxel_size`;
* sparse encoder ``sparse_shape``: :meth:`VoxelGrid.sparse_shape`, (Z + 1, Y,
  X) for mmdet3d's ``SparseEncoder``, (X, Y, Z + 1) for BEVFusion's (SECOND's
  convention, kept by both: the sparse volume has one z layer more than the
  voxel grid);
* BEVFusion / BEVDet ``xbound/ybound/zbound``: :meth:`VoxelGrid.from_bounds`,
  :attr:`VoxelGrid.bounds`;
* BEVFusion's ``dx``, ``bx`` (first voxel centre), ``nx``: :attr:`VoxelGrid.dx`,
  :attr:`VoxelGrid.bx`, :attr:`VoxelGrid.nx` (= ``shape``);
* the render box (MIM4D's collider): :attr:`VoxelGrid.aabb` = ``(*lower, *upper)``;
* the voxel index and flat key of points: :meth:`VoxelGrid.voxel_indices`,
  :meth:`VoxelGrid.flat_keys`;
* the BEV coarsening: :meth:`VoxelGrid.bev_stride`, :meth:`VoxelGrid.coarsened`
  (NS-MAE's 1440 x 1440 voxels under a 180 x 180 BEV map are 8 x 8 voxels per
  cell).

BEV axis order, one name: ``bev_axes`` is ``'xy'`` for a map laid out
``[..., X, Y]`` (rows along LiDAR x; BEVFusion) or ``'yx'`` for ``[..., Y,
X]`` (rows along y; mmdet3d's ``SparseEncoder`` / CenterPoint, BEVDet).

Paper grids (closed form, see ``tests/core/test_grid.py``):

* BEVFusion / NS-MAE LiDAR: range [-54, 54] x [-54, 54] x [-5, 3], voxel
  (0.075, 0.075, 0.2) -> 1440 x 1440 x 40 voxels, ``sparse_shape``
  [1440, 1440, 41] in BEVFusion's order, [41, 1440, 1440] in mmdet3d's; the
  180 x 180 BEV map is 8 x 8 voxels per cell. Camera grid: x/ybound
  [-54, 54, 0.3], zbound [-10, 10, 20] -> 360 x 360 x 1.
* BEVDet: x, y [-51.2, 51.2, 0.8], z [-10, 10, 20] -> 128 x 128 x 1.
* MIM4D volume: [-54, 54] x [-54, 54] x [-5, 3] in 180 x 180 x 5 voxels
  (0.6, 0.6, 1.6 m); its render AABB is the same box.
"""
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['BEV_AXES', 'VoxelGrid', 'check_bev_axes', 'compute_voxel_indices',
           'conv_output_shape']

#: The two BEV layouts (see the module docstring).
BEV_AXES = ('xy', 'yx')

#: Relative tolerance for "the extent is a whole number of voxels".
_CELL_COUNT_RTOL = 1e-6


def check_bev_axes(bev_axes: str) -> str:
    """Return ``bev_axes`` if it is ``'xy'`` or ``'yx'``, else raise ValueError."""
    if bev_axes not in BEV_AXES:
        raise ValueError(f"bev_axes must be 'xy' ([.., X, Y]) or 'yx' ([.., Y, X]), "
                         f'got {bev_axes!r}')
    return bev_axes


def _cell_count(low: float, high: float, size: float, axis: str) -> int:
    """Whole number of cells of size ``size`` in ``[low, high)``; raises if not whole."""
    if not (high > low and size > 0):
        raise ValueError(f'grid axis {axis}: needs max > min and a positive voxel size, '
                         f'got min={low}, max={high}, size={size}')
    cells = (high - low) / size
    count = int(round(cells))
    if count < 1 or abs(cells - count) > _CELL_COUNT_RTOL * max(1.0, cells):
        raise ValueError(f'grid axis {axis}: extent [{low}, {high}] is not a whole number '
                         f'of {size} m voxels ({cells} voxels)')
    return count


def compute_voxel_indices(points: Tensor,
                          grid_lower: Sequence[float],
                          voxel_size: Sequence[float],
                          grid_shape: Sequence[int],
                          rounding: str = 'floor') -> Tuple[Tensor, Tensor]:
    """Integer voxel index of each point, and whether it lies inside the grid.

    ``ijk = floor((p - grid_lower) / voxel_size)``; inside iff ``0 <= ijk <
    grid_shape`` on every axis. BEVFusion / BEVDet truncate with ``.long()``
    (round toward zero), which puts points up to one voxel below
    ``grid_lower`` into voxel 0: ``rounding='trunc'`` reproduces that.

    Args:
        points: (P, 3) points ``(x, y, z)``, LiDAR frame, metres.
        grid_lower: (3,) lower grid corner ``(x, y, z)``, metres.
        voxel_size: (3,) voxel size ``(dx, dy, dz)``, metres.
        grid_shape: ``(X, Y, Z)`` number of voxels per axis.
        rounding: ``'floor'`` (exact) or ``'trunc'`` (BEVFusion's ``.long()``).

    Returns:
        tuple[Tensor, Tensor]: (P, 3) long indices ``(ix, iy, iz)`` and (P,)
        bool ``inside`` mask.
    """
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f'points must have shape (P, 3), got {tuple(points.shape)}')
    if len(grid_shape) != 3:
        raise ValueError(f'grid_shape must be (X, Y, Z), got {tuple(grid_shape)}')
    lower = torch.as_tensor(grid_lower, dtype=points.dtype, device=points.device)
    size = torch.as_tensor(voxel_size, dtype=points.dtype, device=points.device)
    if lower.shape != (3, ) or size.shape != (3, ) or (size <= 0).any():
        raise ValueError('grid_lower and voxel_size must be (3,) with positive voxel '
                         f'sizes, got {tuple(lower.tolist())}, {tuple(size.tolist())}')
    scaled = (points.detach() - lower) / size
    if rounding == 'floor':
        scaled = torch.floor(scaled)
    elif rounding != 'trunc':
        raise ValueError(f"rounding must be 'floor' or 'trunc', got {rounding!r}")
    # Clamp before the cast so that far-away or non-finite points cannot
    # overflow the integer conversion; they stay outside the grid.
    idx = torch.nan_to_num(scaled, nan=-1.0).clamp(-1, max(grid_shape)).long()
    shape = torch.as_tensor(list(grid_shape), device=points.device)
    inside = ((idx >= 0) & (idx < shape)).all(dim=1)
    return idx, inside


def conv_output_shape(shape: Sequence[int], kernel_size: Sequence[int],
                      stride: Sequence[int], padding: Sequence[int],
                      dilation: Sequence[int]) -> Tuple[int, ...]:
    """Spatial size after a (sparse or dense) strided convolution, per axis.

    ``n_out = floor((n + 2 p - d (k - 1) - 1) / s) + 1`` (PyTorch's
    ``Conv3d`` and spconv's ``SparseConv3d`` formula).

    Example:
        >>> conv_output_shape((41, 1440, 1440), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1))
        (21, 720, 720)

    Args:
        shape: Input cells per axis.
        kernel_size, stride, padding, dilation: Per axis, same length.

    Returns:
        tuple[int, ...]: Output cells per axis.
    """
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip(shape, kernel_size, stride, padding, dilation))


@dataclass(frozen=True)
class VoxelGrid:
    """A voxel grid: lower corner, voxel size and shape, all in x, y, z order.

    Build it with :meth:`from_range` (mmdet3d), :meth:`from_bounds`
    (BEVFusion / BEVDet) or :meth:`from_range_and_shape` (MIM4D's volume);
    every other description is a derived value.

    Example:
        >>> g = VoxelGrid.from_range([-54, -54, -5, 54, 54, 3], [0.075, 0.075, 0.2])
        >>> g.shape, g.sparse_shape('zyx'), g.coarsened((8, 8)).shape
        ((1440, 1440, 40), (41, 1440, 1440), (180, 180, 40))

    Attributes:
        lower: (x, y, z) lower corner, LiDAR frame, metres.
        voxel_size: (dx, dy, dz) voxel extent, metres (> 0).
        shape: (X, Y, Z) number of voxels per axis (>= 1).
    """

    lower: Tuple[float, float, float]
    voxel_size: Tuple[float, float, float]
    shape: Tuple[int, int, int]

    def __post_init__(self) -> None:
        if len(self.lower) != 3 or len(self.voxel_size) != 3 or len(self.shape) != 3:
            raise ValueError('VoxelGrid needs lower, voxel_size and shape of 3 values (x, y, z), '
                             f'got {self.lower}, {self.voxel_size}, {self.shape}')
        object.__setattr__(self, 'lower', tuple(float(v) for v in self.lower))
        object.__setattr__(self, 'voxel_size', tuple(float(v) for v in self.voxel_size))
        object.__setattr__(self, 'shape', tuple(int(v) for v in self.shape))
        if any(not v > 0 for v in self.voxel_size) or any(n < 1 for n in self.shape):
            raise ValueError(f'VoxelGrid needs positive voxel sizes and at least one voxel per '
                             f'axis, got voxel_size={self.voxel_size}, shape={self.shape}')

    # ------------------------------------------------------------------ #
    # constructors
    # ------------------------------------------------------------------ #
    @classmethod
    def from_range(cls, point_cloud_range: Sequence[float],
                   voxel_size: Sequence[float]) -> 'VoxelGrid':
        """From mmdet3d's ``point_cloud_range`` (x0, y0, z0, x1, y1, z1) and ``voxel_size``.

        Raises:
            ValueError: The range is not a whole number of voxels on an axis.
        """
        pcr = [float(v) for v in point_cloud_range]
        size = [float(v) for v in voxel_size]
        if len(pcr) != 6 or len(size) != 3:
            raise ValueError('point_cloud_range must have 6 values and voxel_size 3, got '
                             f'{point_cloud_range} and {voxel_size}')
        shape = [_cell_count(pcr[i], pcr[i + 3], size[i], 'xyz'[i]) for i in range(3)]
        return cls(tuple(pcr[:3]), tuple(size), tuple(shape))

    @classmethod
    def from_bounds(cls, xbound: Sequence[float], ybound: Sequence[float],
                    zbound: Sequence[float]) -> 'VoxelGrid':
        """From BEVFusion's ``xbound/ybound/zbound`` (or BEVDet's ``grid_config`` x/y/z).

        Each bound is ``(min, max, step)`` in metres.
        """
        bounds = [tuple(float(v) for v in b) for b in (xbound, ybound, zbound)]
        if any(len(b) != 3 for b in bounds):
            raise ValueError('xbound, ybound and zbound must be (min, max, step), got '
                             f'{xbound}, {ybound}, {zbound}')
        shape = [_cell_count(low, high, step, axis)
                 for (low, high, step), axis in zip(bounds, 'xyz')]
        return cls(tuple(b[0] for b in bounds), tuple(b[2] for b in bounds), tuple(shape))

    @classmethod
    def from_range_and_shape(cls, point_cloud_range: Sequence[float],
                             shape: Sequence[int]) -> 'VoxelGrid':
        """From a box (x0, y0, z0, x1, y1, z1) split into ``shape`` (X, Y, Z) voxels."""
        pcr = [float(v) for v in point_cloud_range]
        if len(pcr) != 6 or len(shape) != 3:
            raise ValueError('point_cloud_range must have 6 values and shape 3 (X, Y, Z), got '
                             f'{point_cloud_range} and {shape}')
        if any(not pcr[i + 3] > pcr[i] for i in range(3)):
            raise ValueError(f'point_cloud_range needs max > min per axis, got {pcr}')
        size = [(pcr[i + 3] - pcr[i]) / int(shape[i]) for i in range(3)]
        return cls(tuple(pcr[:3]), tuple(size), tuple(shape))

    # ------------------------------------------------------------------ #
    # derived descriptions
    # ------------------------------------------------------------------ #
    @property
    def upper(self) -> Tuple[float, float, float]:
        """(x, y, z) upper corner, metres: ``lower + shape * voxel_size``."""
        return tuple(lo + n * s for lo, n, s in zip(self.lower, self.shape, self.voxel_size))

    @property
    def aabb(self) -> Tuple[float, ...]:
        """The box (x_min, y_min, z_min, x_max, y_max, z_max), metres (MIM4D's render AABB)."""
        return self.lower + self.upper

    #: mmdet3d's name of the same box.
    point_cloud_range = aabb

    @property
    def bounds(self) -> Tuple[Tuple[float, float, float], ...]:
        """BEVFusion's ``(xbound, ybound, zbound)``, each (min, max, step), metres."""
        return tuple(zip(self.lower, self.upper, self.voxel_size))

    @property
    def dx(self) -> Tuple[float, float, float]:
        """BEVFusion's ``dx``: the voxel size, metres."""
        return self.voxel_size

    @property
    def bx(self) -> Tuple[float, float, float]:
        """BEVFusion's ``bx``: centre of the first voxel, ``lower + voxel_size / 2``, metres."""
        return tuple(lo + s / 2 for lo, s in zip(self.lower, self.voxel_size))

    @property
    def nx(self) -> Tuple[int, int, int]:
        """BEVFusion's ``nx``: voxels per axis (X, Y, Z), same as :attr:`shape`."""
        return self.shape

    def sparse_shape(self, order: str) -> Tuple[int, int, int]:
        """The sparse encoder's ``sparse_shape``: (X, Y, Z + 1) or (Z + 1, Y, X).

        SECOND's convention (``sparse_shape = grid_size[::-1] + [1, 0, 0]``),
        kept by mmdet3d's CenterPoint configs and BEVFusion: the sparse
        volume has one z layer above the voxel grid (always empty), so that
        the strided z convolutions end at the paper's sizes (41 -> 21 -> 11
        -> 5 -> 2).

        Args:
            order: ``'xyz'`` (BEVFusion's sparse encoder) or ``'zyx'``
                (mmdet3d's ``SparseEncoder``).
        """
        num_x, num_y, num_z = self.shape
        if order == 'xyz':
            return (num_x, num_y, num_z + 1)
        if order == 'zyx':
            return (num_z + 1, num_y, num_x)
        raise ValueError(f"order must be 'xyz' or 'zyx', got {order!r}")

    def bev_shape(self, bev_axes: str) -> Tuple[int, int]:
        """Spatial size of a BEV map over this grid: (X, Y) for ``'xy'``, (Y, X) for ``'yx'``."""
        num_x, num_y = self.shape[:2]
        return (num_x, num_y) if check_bev_axes(bev_axes) == 'xy' else (num_y, num_x)

    def cell_centres(self, axis: int, device=None, dtype=torch.float32) -> Tensor:
        """Voxel centres along one axis (0 = x, 1 = y, 2 = z), metres.

        Returns:
            Tensor: (N_axis,) ``lower + (i + 0.5) * voxel_size``.
        """
        index = torch.arange(self.shape[axis], device=device, dtype=torch.float64)
        return (self.lower[axis] + self.voxel_size[axis] * (index + 0.5)).to(dtype)

    # ------------------------------------------------------------------ #
    # points and voxels
    # ------------------------------------------------------------------ #
    def voxel_indices(self, points: Tensor, rounding: str = 'floor') -> Tuple[Tensor, Tensor]:
        """(P, 3) long ``(ix, iy, iz)`` of (P, 3) points (metres) and the (P,) inside mask.

        See :func:`compute_voxel_indices`.
        """
        return compute_voxel_indices(points, self.lower, self.voxel_size, self.shape, rounding)

    def flat_keys(self, batch_idx: Tensor, ijk: Tensor) -> Tensor:
        """One integer per (sample, voxel): ``((b * Z + iz) * Y + iy) * X + ix``.

        Distinct for distinct in-grid voxels of distinct samples (the
        row-major index of a (B, Z, Y, X) array).

        Args:
            batch_idx: (M,) sample index.
            ijk: (M, 3) voxel indices ``(ix, iy, iz)`` (take columns
                ``[3, 2, 1]`` of mmdet3d's ``(batch, z, y, x)`` coordinates).

        Returns:
            Tensor: (M,) long keys.
        """
        if ijk.dim() != 2 or ijk.shape[1] != 3 or batch_idx.shape != ijk.shape[:1]:
            raise ValueError(f'flat_keys needs batch_idx (M,) and ijk (M, 3), got '
                             f'{tuple(batch_idx.shape)} and {tuple(ijk.shape)}')
        num_x, num_y, num_z = self.shape
        ijk = ijk.long()
        return ((batch_idx.long() * num_z + ijk[:, 2]) * num_y + ijk[:, 1]) * num_x + ijk[:, 0]

    # ------------------------------------------------------------------ #
    # BEV coarsening
    # ------------------------------------------------------------------ #
    def bev_stride(self, bev_shape: Sequence[int], bev_axes: str) -> Tuple[int, int]:
        """Voxels per BEV cell (s_x, s_y) for a BEV map of ``bev_shape`` over this grid.

        Args:
            bev_shape: Spatial size of the map in ``bev_axes`` order.
            bev_axes: ``'xy'`` or ``'yx'``.

        Raises:
            ValueError: The grid is not a whole multiple of the map.
        """
        bev_x, bev_y = (tuple(bev_shape) if check_bev_axes(bev_axes) == 'xy'
                        else tuple(bev_shape)[::-1])
        num_x, num_y = self.shape[:2]
        if bev_x < 1 or bev_y < 1 or num_x % bev_x or num_y % bev_y:
            raise ValueError(f'voxel grid {num_x}x{num_y} (X x Y) is not an integer multiple '
                             f'of the BEV map {bev_x}x{bev_y}; check sparse_shape/xbound/ybound')
        return num_x // bev_x, num_y // bev_y

    def coarsened(self, stride_xy: Sequence[int]) -> 'VoxelGrid':
        """The grid of BEV cells made of ``s_x x s_y`` voxel columns (same box, same z).

        A voxel ``(ix, iy, iz)`` lies in cell ``(ix // s_x, iy // s_y, iz)``
        (:meth:`coarsen_indices`); the cells cover ``ceil(X / s_x)`` x
        ``ceil(Y / s_y)``.
        """
        s_x, s_y = (int(s) for s in stride_xy)
        if s_x < 1 or s_y < 1:
            raise ValueError(f'stride must be >= 1, got {tuple(stride_xy)}')
        num_x, num_y, num_z = self.shape
        return VoxelGrid(self.lower,
                         (self.voxel_size[0] * s_x, self.voxel_size[1] * s_y, self.voxel_size[2]),
                         (math.ceil(num_x / s_x), math.ceil(num_y / s_y), num_z))

    @staticmethod
    def coarsen_indices(ijk: Tensor, stride_xy: Sequence[int]) -> Tensor:
        """(M, 3) voxel indices ``(ix, iy, iz)`` -> coarse cells ``(ix // s_x, iy // s_y, iz)``."""
        s_x, s_y = (int(s) for s in stride_xy)
        return ijk.long() // ijk.new_tensor([s_x, s_y, 1]).long()

    def to_tensor(self, name: str, device: Optional[torch.device] = None,
                  dtype: torch.dtype = torch.float32) -> Tensor:
        """A derived (3,) value as a tensor (e.g. BEVFusion's ``dx/bx/nx`` buffers).

        Args:
            name: ``'lower'``, ``'upper'``, ``'voxel_size'``, ``'dx'``, ``'bx'``
                (computed in float64, cast to ``dtype``) or ``'nx'`` /
                ``'shape'`` (long).
            device: Device of the tensor.
            dtype: Float dtype of the metric values.
        """
        if name in ('nx', 'shape'):
            return torch.tensor(self.shape, dtype=torch.long, device=device)
        if name not in ('lower', 'voxel_size', 'bx', 'dx', 'upper'):
            raise KeyError(f'VoxelGrid has no (3,) value {name!r}')
        return torch.tensor(getattr(self, name), dtype=torch.float64, device=device).to(dtype)
