"""CPU stand-ins for the two compiled extensions of mmdet3d's BEVFusion project.

mmdetection3d v1.4.0's ``projects/BEVFusion`` imports two C++/CUDA
extensions that ``projects/BEVFusion/setup.py`` compiles (CUDA only for the
pooling and the dynamic scatter):

``projects.BEVFusion.bevfusion.ops.bev_pool.bev_pool_ext``
    ``bev_pool_forward`` / ``bev_pool_backward`` (``src/bev_pool_cuda.cu``):
    the sum of the camera-frustum features of each interval of rank-sorted
    points, written into a (B, D, H, W, C) grid.
``projects.BEVFusion.bevfusion.ops.voxel.voxel_layer``
    ``hard_voxelize`` / ``dynamic_voxelize`` (``src/voxelization*.cpp``) and
    ``dynamic_point_to_voxel_forward`` / ``_backward``
    (``src/scatter_points_cuda.cu``).

This module implements the same functions, with the same signatures and the
same in-place output arguments, in PyTorch (pooling, scatter) and on mmcv's
CPU voxelisation kernels (``mmcv._ext.hard_voxelize_forward`` /
``dynamic_voxelize_forward``). Upstream's ``voxelization_cpu.cpp`` runs the
same algorithm as mmcv's but writes voxel coordinates as (x, y, z), where
mmcv writes (z, y, x): BEVFusion's sparse encoder reads (x, y, z) (its
``sparse_shape`` is [X, Y, Z]), so the stand-ins reverse mmcv's columns.
:func:`render_pretrain.compat.install_bevfusion_cpu_ops` makes them
importable under the extension names when the compiled extensions are
absent. mmcv is imported lazily (only by the voxelisation functions); nothing
here imports mmdet3d.
"""
import importlib.abc
import importlib.util
import logging
from typing import List, Sequence

import torch

logger = logging.getLogger(__name__)

BEV_POOL_EXT = 'projects.BEVFusion.bevfusion.ops.bev_pool.bev_pool_ext'
VOXEL_LAYER = 'projects.BEVFusion.bevfusion.ops.voxel.voxel_layer'

_REDUCE_TYPES = ('sum', 'mean', 'max')


def _interval_members(interval_lengths: torch.Tensor,
                      interval_starts: torch.Tensor) -> tuple:
    """Point index and interval index of every point covered by an interval.

    Args:
        interval_lengths (Tensor): (N_int,) int, number of points per interval.
        interval_starts (Tensor): (N_int,) int, first point of each interval.

    Returns:
        tuple[Tensor, Tensor]: (N_cov,) long point indices and (N_cov,) long
        interval indices, interval by interval.
    """
    lengths = interval_lengths.long()
    interval = torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device),
                                       lengths)
    offsets = torch.cumsum(lengths, 0) - lengths
    within = torch.arange(interval.numel(), device=lengths.device) - offsets[interval]
    return interval_starts.long()[interval] + within, interval


def _interval_cells(geom_feats: torch.Tensor, interval_starts: torch.Tensor,
                    b: int, d: int, h: int, w: int) -> torch.Tensor:
    """Flat index into a (b, d, h, w) grid of each interval's cell.

    ``geom_feats`` rows are (x, y, z, batch) voxel indices, as in upstream's
    ``bev_pool``; the cell is taken from the interval's first point and the
    grid is indexed [batch, z, x, y] (``bev_pool_kernel``).
    """
    g = geom_feats.long()[interval_starts.long()]
    for axis, size, name in ((0, h, 'x'), (1, w, 'y'), (2, d, 'z'), (3, b, 'batch')):
        if g.numel() and (g[:, axis].min() < 0 or g[:, axis].max() >= size):
            raise IndexError(f'bev_pool: {name} index outside [0, {size}) in geom_feats')
    return ((g[:, 3] * d + g[:, 2]) * h + g[:, 0]) * w + g[:, 1]


def bev_pool_forward(x: torch.Tensor, geom_feats: torch.Tensor,
                     interval_lengths: torch.Tensor, interval_starts: torch.Tensor,
                     b: int, d: int, h: int, w: int) -> torch.Tensor:
    """Sum the features of each interval of rank-sorted points into a BEV grid.

    Same contract as ``bev_pool_forward`` of upstream's ``bev_pool_ext``:
    ``out[batch, z, x, y] = sum(x[start:start + length])`` for each interval,
    with (x, y, z, batch) = ``geom_feats[start]``; cells without an interval
    are zero.

    Args:
        x (Tensor): (N, C) float frustum-point features, sorted by rank.
        geom_feats (Tensor): (N, 4) int voxel indices (x, y, z, batch).
        interval_lengths (Tensor): (N_int,) int points per interval.
        interval_starts (Tensor): (N_int,) int first point of each interval.
        b, d, h, w (int): Batch size, Z cells, X cells, Y cells.

    Returns:
        Tensor: (b, d, h, w, C) pooled features (``x``'s dtype and device).
    """
    points, interval = _interval_members(interval_lengths, interval_starts)
    sums = x.new_zeros(interval_lengths.numel(), x.shape[1])
    sums.index_add_(0, interval, x[points])
    out = x.new_zeros(b * d * h * w, x.shape[1])
    out[_interval_cells(geom_feats, interval_starts, b, d, h, w)] = sums
    return out.view(b, d, h, w, x.shape[1])


def bev_pool_backward(out_grad: torch.Tensor, geom_feats: torch.Tensor,
                      interval_lengths: torch.Tensor, interval_starts: torch.Tensor,
                      b: int, d: int, h: int, w: int) -> torch.Tensor:
    """Gradient of :func:`bev_pool_forward` with respect to ``x``.

    Every point of an interval receives its cell's gradient; points outside
    all intervals receive zero (``bev_pool_grad_kernel``).

    Args:
        out_grad (Tensor): (b, d, h, w, C) gradient of the pooled grid.
        geom_feats (Tensor): (N, 4) int voxel indices (x, y, z, batch).
        interval_lengths (Tensor): (N_int,) int points per interval.
        interval_starts (Tensor): (N_int,) int first point of each interval.
        b, d, h, w (int): Batch size, Z cells, X cells, Y cells.

    Returns:
        Tensor: (N, C) gradient of the point features.
    """
    channels = out_grad.shape[4]
    points, interval = _interval_members(interval_lengths, interval_starts)
    cells = _interval_cells(geom_feats, interval_starts, b, d, h, w)
    x_grad = out_grad.new_zeros(geom_feats.shape[0], channels)
    x_grad[points] = out_grad.reshape(-1, channels)[cells[interval]]
    return x_grad


def _mmcv_ext():
    from mmcv.utils import ext_loader
    return ext_loader.load_ext('_ext', ['hard_voxelize_forward', 'dynamic_voxelize_forward'])


def hard_voxelize(points: torch.Tensor, voxels: torch.Tensor, coors: torch.Tensor,
                  num_points_per_voxel: torch.Tensor, voxel_size: Sequence[float],
                  coors_range: Sequence[float], max_points: int, max_voxels: int,
                  NDim: int = 3, deterministic: bool = True) -> int:  # noqa: N803
    """Hard voxelisation into preallocated outputs (upstream ``hard_voxelize``).

    Runs mmcv's kernel (on CPU the same algorithm as upstream's
    ``hard_voxelize_cpu``: voxels in order of their first point, at most
    ``max_points`` points each) and writes the coordinates in upstream's
    (x, y, z) order.

    Args:
        points (Tensor): (N, C) float points, columns 0-2 = x, y, z in metres.
        voxels (Tensor): (max_voxels, max_points, C) output, zeros on entry.
        coors (Tensor): (max_voxels, 3) int output voxel indices (x, y, z).
        num_points_per_voxel (Tensor): (max_voxels,) int output counts.
        voxel_size (Sequence[float]): (3,) voxel size x, y, z in metres.
        coors_range (Sequence[float]): (6,) x_min, y_min, z_min, x_max, y_max,
            z_max in metres.
        max_points (int): Points kept per voxel.
        max_voxels (int): Voxels kept.
        NDim (int): Number of coordinate dimensions (3).
        deterministic (bool): Passed to mmcv (only its GPU kernel reads it).

    Returns:
        int: Number of voxels written.
    """
    voxel_num = torch.zeros(size=(), dtype=torch.long)
    _mmcv_ext().hard_voxelize_forward(
        points, torch.tensor(voxel_size, dtype=torch.float),
        torch.tensor(coors_range, dtype=torch.float), voxels, coors, num_points_per_voxel,
        voxel_num, max_points=max_points, max_voxels=max_voxels, NDim=NDim,
        deterministic=deterministic)
    count = int(voxel_num)
    coors[:count] = coors[:count].flip(-1)  # mmcv (z, y, x) -> upstream (x, y, z)
    return count


def dynamic_voxelize(points: torch.Tensor, coors: torch.Tensor, voxel_size: Sequence[float],
                     coors_range: Sequence[float], NDim: int = 3) -> None:  # noqa: N803
    """Voxel index (x, y, z) of every point, -1 outside the range (in place).

    Args:
        points (Tensor): (N, C) float points, columns 0-2 = x, y, z in metres.
        coors (Tensor): (N, 3) int output (upstream's (x, y, z) order).
        voxel_size (Sequence[float]): (3,) voxel size x, y, z in metres.
        coors_range (Sequence[float]): (6,) point-cloud range in metres.
        NDim (int): Number of coordinate dimensions (3).
    """
    _mmcv_ext().dynamic_voxelize_forward(
        points, torch.tensor(voxel_size, dtype=torch.float),
        torch.tensor(coors_range, dtype=torch.float), coors, NDim=NDim)
    coors.copy_(coors.flip(-1))  # mmcv (z, y, x) -> upstream (x, y, z); -1 rows stay -1


def dynamic_point_to_voxel_forward(feats: torch.Tensor, coors: torch.Tensor,
                                   reduce_type: str) -> List[torch.Tensor]:
    """Reduce the features of points sharing a voxel (upstream's CUDA semantics).

    Points with any negative coordinate are dropped; voxels come out sorted
    by coordinate (``unique_dim``).

    Args:
        feats (Tensor): (N, C) float point features.
        coors (Tensor): (N, ndim) int voxel coordinates of each point.
        reduce_type (str): 'sum', 'mean' or 'max'.

    Returns:
        list[Tensor]: (M, C) reduced features, (M, ndim) voxel coordinates,
        (N,) int32 voxel of each point (-1 if dropped), (M,) int32 points
        per voxel.
    """
    if reduce_type not in _REDUCE_TYPES:
        raise ValueError(f'reduce_type must be one of {_REDUCE_TYPES}, got {reduce_type!r}')
    if feats.shape[0] == 0:
        return [feats.clone().detach(), coors.clone().detach(),
                coors.new_empty(0, dtype=torch.int32), coors.new_empty(0, dtype=torch.int32)]
    clean = coors.masked_fill(coors.lt(0).any(-1, keepdim=True), -1)
    out_coors, coors_map, reduce_count = torch.unique(
        clean, sorted=True, return_inverse=True, return_counts=True, dim=0)
    if out_coors[0, 0] < 0:  # the dropped points' (-1, ..., -1) row
        out_coors, reduce_count, coors_map = out_coors[1:], reduce_count[1:], coors_map - 1
    kept = coors_map >= 0
    index = coors_map[kept].unsqueeze(1).expand(-1, feats.shape[1])
    reduce = 'amax' if reduce_type == 'max' else 'sum'
    fill = float('-inf') if reduce_type == 'max' else 0.0
    reduced = feats.new_full((out_coors.shape[0], feats.shape[1]), fill)
    reduced = reduced.scatter_reduce(0, index, feats[kept], reduce=reduce, include_self=True)
    if reduce_type == 'mean':
        reduced = reduced / reduce_count.unsqueeze(-1).to(reduced.dtype)
    return [reduced, out_coors, coors_map.int(), reduce_count.int()]


def dynamic_point_to_voxel_backward(grad_feats: torch.Tensor, grad_reduced_feats: torch.Tensor,
                                    feats: torch.Tensor, reduced_feats: torch.Tensor,
                                    coors_map: torch.Tensor, reduce_count: torch.Tensor,
                                    reduce_type: str) -> None:
    """Gradient of :func:`dynamic_point_to_voxel_forward`, written into ``grad_feats``.

    'sum' copies the voxel gradient to each point, 'mean' divides it by the
    voxel's point count, 'max' sends it (per channel) to the lowest-index
    point that attains the maximum, as upstream's CUDA kernels do.

    Args:
        grad_feats (Tensor): (N, C) output, overwritten.
        grad_reduced_feats (Tensor): (M, C) gradient of the reduced features.
        feats (Tensor): (N, C) point features of the forward pass.
        reduced_feats (Tensor): (M, C) reduced features of the forward pass.
        coors_map (Tensor): (N,) int voxel of each point, -1 if dropped.
        reduce_count (Tensor): (M,) int points per voxel.
        reduce_type (str): 'sum', 'mean' or 'max'.
    """
    if reduce_type not in _REDUCE_TYPES:
        raise ValueError(f'reduce_type must be one of {_REDUCE_TYPES}, got {reduce_type!r}')
    grad_feats.zero_()
    points = torch.nonzero(coors_map >= 0).squeeze(1)
    voxel = coors_map.long()[points]
    if reduce_type == 'sum':
        grad_feats[points] = grad_reduced_feats[voxel]
    elif reduce_type == 'mean':
        grad_feats[points] = grad_reduced_feats[voxel] / reduce_count.long()[voxel].unsqueeze(
            1).to(grad_feats.dtype)
    else:
        channels = feats.shape[1]
        is_max = feats[points] == reduced_feats[voxel]
        candidate = torch.where(is_max, points.unsqueeze(1).expand(-1, channels),
                                torch.full_like(is_max, feats.shape[0], dtype=torch.long))
        first = torch.full((reduced_feats.shape[0], channels), feats.shape[0],
                           dtype=torch.long, device=feats.device)
        first = first.scatter_reduce(0, voxel.unsqueeze(1).expand(-1, channels), candidate,
                                     reduce='amin', include_self=True)
        column = torch.arange(channels, device=feats.device).expand_as(first)
        grad_feats[first.reshape(-1), column.reshape(-1)] = grad_reduced_feats.reshape(-1)


_EXPORTS = {
    BEV_POOL_EXT: ('bev_pool_forward', 'bev_pool_backward'),
    VOXEL_LAYER: ('hard_voxelize', 'dynamic_voxelize', 'dynamic_point_to_voxel_forward',
                  'dynamic_point_to_voxel_backward'),
}


class CPUOpsFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import finder that serves this module's functions as BEVFusion's extensions.

    Meant to sit *last* on ``sys.meta_path`` (see
    :func:`render_pretrain.compat.install_bevfusion_cpu_ops`): Python asks it
    only after the path finders found no compiled ``bev_pool_ext`` /
    ``voxel_layer`` beside upstream's ``bev_pool.py`` / ``voxelize.py``.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _EXPORTS:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=__name__)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        for name in _EXPORTS[module.__name__]:
            setattr(module, name, globals()[name])
        logger.info('%s: compiled extension not found, using the PyTorch/mmcv stand-in of %s',
                    module.__name__, __name__)
