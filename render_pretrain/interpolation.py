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

Fast path for fixed sample points (the NeuS field: samples carry no
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
from torch.autograd.function import once_differentiable

__all__ = [
    'trilinear_interpolate_packed', 'trilinear_interpolate', 'normalize_points_to_aabb',
    'trilinear_corner_weights', 'interpolate_table', 'interpolate_table_gradient',
    'TableRowGroups'
]

# Offsets (dz, dy, dx) of the 8 corners of a voxel cell.
_CORNERS = ((0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1),
            (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1))


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


def trilinear_corner_weights(points: Tensor,
                             batch_idx: Tensor,
                             grid_size: Sequence[int],
                             align_corners: bool = False,
                             derivatives: bool = False,
                             num_rows: Optional[int] = None) -> Tuple[Tensor, Tensor]:
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
        num_rows (int, optional): Rows of the table (B * Z * Y * X); when
            omitted, B = max(batch_idx) + 1 is read from ``batch_idx`` (a
            device sync on GPU).

    Returns:
        tuple[Tensor, Tensor]: ``corner_idx`` (P, 8) table rows (int32 when
        the table's rows fit, as the gathers and the sort of
        :class:`TableRowGroups` are faster on them; else int64), and
        ``weights`` (K, P, 8) in the points' dtype, K = 1 (value) or 4
        (value, d/dx, d/dy, d/dz with respect to the normalised coordinates).
        K leads so that each row k is contiguous.

    Example:
        >>> idx, w = trilinear_corner_weights(torch.zeros(1, 3), torch.zeros(1).long(),
        ...                                   (2, 2, 2), align_corners=True)
        >>> idx
        tensor([[0, 1, 2, 3, 4, 5, 6, 7]], dtype=torch.int32)
        >>> w[0, 0]
        tensor([0.1250, 0.1250, 0.1250, 0.1250, 0.1250, 0.1250, 0.1250, 0.1250])
    """
    if points.dim() != 2 or points.shape[-1] != 3:
        raise ValueError(f'points must be (P, 3) ordered (x, y, z), '
                         f'got shape {tuple(points.shape)}')
    if batch_idx.shape != points.shape[:1]:
        raise ValueError(f'batch_idx must be (P,) = {tuple(points.shape[:1])}, '
                         f'got shape {tuple(batch_idx.shape)}')
    if len(grid_size) != 3:
        raise ValueError(f'grid_size must be (Z, Y, X), got {tuple(grid_size)}')
    size_z, size_y, size_x = (int(v) for v in grid_size)
    points = points.detach()
    if num_rows is None:
        num_rows = (int(batch_idx.max()) + 1 if batch_idx.numel() else 1) * size_z * size_y * size_x
    index_dtype = torch.int32 if num_rows < 2**31 else torch.int64
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
        corner = base.to(index_dtype) + torch.arange(
            2, dtype=index_dtype, device=points.device).unsqueeze(1)  # (2, P)
        inside = ((corner >= 1) & (corner <= size)).to(points.dtype)
        factors.append(torch.stack([1 - frac, frac]) * inside)
        if derivatives:
            scale = ((raw >= 0) & (raw <= size + 1)).to(points.dtype) * _index_scale(
                size, align_corners)
            slopes.append(torch.stack([-scale, scale]) * inside)
        indices.append((corner - 1).clamp(0, size - 1))
    index_x, index_y, index_z = indices
    row_z = batch_idx.to(index_dtype) * size_z + index_z  # (2, P)
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
    # (8, K * P) -> (K * P, 8) is a 2-D transpose, several times faster on
    # CPU than the equivalent 3-D permute of (8, K, P).
    num_rows = f_z.shape[1]
    weights = weights.reshape(8, -1).t().contiguous().view(num_rows, -1, 8)
    return corner_idx.contiguous(), weights


class TableRowGroups:
    """The (point, corner) pairs of a corner set grouped by table row.

    The backward pass of a gather (:func:`interpolate_table`,
    :func:`interpolate_table_gradient`) is a scatter: every table row sums
    the gradients of the (point, corner) pairs that read it. It is computed
    as a weighted gather too (``F.embedding_bag`` over the pairs sorted by
    row), which needs one sort of the corner rows. The grouping is built on
    first use and shared by every backward pass over the same corners.

    Args:
        corner_idx (Tensor): (P, 8) table rows (int32 or int64).
        num_rows (int): N, rows of the table.
    """

    def __init__(self, corner_idx: Tensor, num_rows: int):
        self.corner_idx = _compact_rows(corner_idx, num_rows)
        self.num_rows = int(num_rows)
        self._groups = None

    def get(self) -> Tuple[Tensor, Tensor, Tensor]:
        """``order`` (8P,) pair indices sorted by row, ``point`` (8P,) their
        points and ``offsets`` (N,) the start of each row's group."""
        if self._groups is None:
            flat = self.corner_idx.reshape(-1)
            order = torch.sort(flat).indices
            counts = torch.bincount(flat, minlength=self.num_rows)
            offsets = (counts.cumsum(0) - counts).to(flat.dtype)
            self._groups = order, (order >> 3).to(flat.dtype), offsets  # pair // 8
        return self._groups

    def scatter(self, source: Tensor, pair_weights: Tensor) -> Tensor:
        """``out[r] = sum over pairs (p, j) reading row r of pair_weights[p, j] * source[p]``.

        Args:
            source (Tensor): (P, D) per-point rows.
            pair_weights (Tensor): (P, 8) weight of each (point, corner) pair.

        Returns:
            Tensor: (N, D).
        """
        order, point, offsets = self.get()
        return F.embedding_bag(point, source.contiguous(), offsets, mode='sum',
                               per_sample_weights=pair_weights.reshape(-1).index_select(0, order))


def _row_groups(corner_idx: Tensor, num_rows: int,
                row_groups: Optional[TableRowGroups]) -> TableRowGroups:
    if row_groups is None:
        return TableRowGroups(corner_idx, num_rows)
    if row_groups.num_rows != num_rows or row_groups.corner_idx.shape != corner_idx.shape:
        raise ValueError(f'row_groups were built for {tuple(row_groups.corner_idx.shape)} corners '
                         f'of a {row_groups.num_rows}-row table, got '
                         f'{tuple(corner_idx.shape)} corners of a {num_rows}-row table')
    return row_groups


def _weighted_rows(table: Tensor, corner_idx: Tensor, weights: Tensor) -> Tensor:
    """``out[p] = sum_j weights[p, j] * table[corner_idx[p, j]]`` as one fused gather."""
    return F.embedding_bag(corner_idx, table, per_sample_weights=weights, mode='sum')


class _TableInterpolation(torch.autograd.Function):
    """Weighted sums of table rows; the gradient flows to the table only."""

    @staticmethod
    def forward(ctx, table: Tensor, corner_idx: Tensor, weights: Tensor,
                derivative_channels: int, row_groups: TableRowGroups) -> Tuple[Tensor, Tensor]:
        num_rows, num = weights.shape[:2]
        values = _weighted_rows(table, corner_idx, weights[0])
        if num_rows > 1 and derivative_channels > 0:
            sub = table[:, :derivative_channels].contiguous()
            derivs = torch.stack([_weighted_rows(sub, corner_idx, weights[k])
                                  for k in range(1, num_rows)])
        else:
            derivs = table.new_zeros(num_rows - 1, num, derivative_channels)
        ctx.save_for_backward(weights)
        ctx.row_groups = row_groups
        ctx.table_channels = table.shape[1]
        ctx.derivative_channels = derivative_channels
        ctx.set_materialize_grads(False)
        return values, derivs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_values: Optional[Tensor], grad_derivs: Optional[Tensor]):
        if not ctx.needs_input_grad[0] or (grad_values is None and grad_derivs is None):
            return None, None, None, None, None
        weights, = ctx.saved_tensors
        groups = ctx.row_groups
        num_rows = weights.shape[0]
        split = ctx.derivative_channels if num_rows > 1 else 0
        grad_table = None
        if grad_values is not None:
            grad_table = groups.scatter(grad_values, weights[0])
        if split > 0 and grad_derivs is not None:
            part = sum(groups.scatter(grad_derivs[axis], weights[axis + 1])
                       for axis in range(num_rows - 1))
            if grad_table is None:
                grad_table = weights.new_zeros(groups.num_rows, ctx.table_channels)
            grad_table[:, :split] += part
        return grad_table, None, None, None, None


class _TableGradientContraction(torch.autograd.Function):
    """``out[p, a] = sum_j w[a, p, j] table[c[p, j], :D] . vectors[p]``; grads to table, vectors."""

    @staticmethod
    def forward(ctx, table: Tensor, corner_idx: Tensor, weights: Tensor, vectors: Tensor,
                row_groups: TableRowGroups) -> Tensor:
        num_axes = weights.shape[0]
        channels = vectors.shape[1]
        sub = table[:, :channels].contiguous() if channels < table.shape[1] else table
        # One gather and one (P, D) product per axis, each used while in cache:
        # 18 % faster on CPU than one gather of the repeated corners into an
        # (A, P, D) tensor (2026-12-05, P = 98k, D = 16), and several times
        # faster than a broadcast (A, P, D) * (P, D) product.
        out = torch.stack([(_weighted_rows(sub, corner_idx, weights[axis]) * vectors).sum(-1)
                           for axis in range(num_axes)], 1)
        ctx.save_for_backward(sub, corner_idx, weights, vectors)
        ctx.row_groups = row_groups
        ctx.table_channels = table.shape[1]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        sub, corner_idx, weights, vectors = ctx.saved_tensors
        # d out[p, a] / d (pair (p, j)) is rank one: weight w[a, p, j] times
        # the row . vectors[p]; u[p, j] = sum_a grad[p, a] w[a, p, j].
        grad_out = grad_out.to(weights)
        pair = weights[0] * grad_out[:, :1]
        for axis in range(1, weights.shape[0]):
            pair.addcmul_(weights[axis], grad_out[:, axis:axis + 1])
        grad_table = grad_vectors = None
        if ctx.needs_input_grad[0]:
            part = ctx.row_groups.scatter(vectors, pair)
            if ctx.table_channels == part.shape[1]:
                grad_table = part
            else:
                grad_table = part.new_zeros(part.shape[0], ctx.table_channels)
                grad_table[:, :part.shape[1]] = part
        if ctx.needs_input_grad[3]:
            grad_vectors = _weighted_rows(sub, corner_idx, pair)
        return grad_table, None, None, grad_vectors, None


def _compact_rows(corner_idx: Tensor, num_rows: int) -> Tensor:
    """int32 rows when they fit: faster gathers and sort than int64."""
    return corner_idx.int() if num_rows < 2**31 else corner_idx.long()


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
                      derivative_channels: Optional[int] = None,
                      row_groups: Optional[TableRowGroups] = None) -> Tuple[Tensor, Tensor]:
    """Trilinear values (and spatial derivatives) of fixed points from a row table.

    ``value[p] = sum_j weights[0, p, j] table[corner_idx[p, j]]`` and
    ``deriv[a, p] = sum_j weights[1 + a, p, j] table[corner_idx[p, j], :D]``
    (fused gather + weighted sum, ``F.embedding_bag``). Both are linear in
    the table, so a loss on the derivatives (the eikonal term, the NeuS cos
    term) is back-propagated to the table in one ordinary backward pass.

    Differentiable once w.r.t. ``table`` only (not ``weights``: the points
    are constants); for gradients w.r.t. the points use
    :func:`trilinear_interpolate_packed`.

    Args:
        table (Tensor): (N, C) rows of a channel-last volume (B, Z, Y, X, C).
        corner_idx (Tensor): (P, 8) int32 or int64 rows, from
            :func:`trilinear_corner_weights`.
        weights (Tensor): (K, P, 8) value (k = 0) and derivative weights.
        derivative_channels (int, optional): D, the leading channels whose
            derivatives are computed (default: all C).
        row_groups (TableRowGroups, optional): ``TableRowGroups(corner_idx,
            N)`` shared with other gathers over the same corners (one sort
            in the backward pass instead of one per gather).

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
    row_groups = _row_groups(corner_idx, table.shape[0], row_groups)
    return _TableInterpolation.apply(table, row_groups.corner_idx,
                                     weights.to(table.dtype).contiguous(), derivative_channels,
                                     row_groups)


def interpolate_table_gradient(table: Tensor,
                               corner_idx: Tensor,
                               weights: Tensor,
                               vectors: Tensor,
                               row_groups: Optional[TableRowGroups] = None) -> Tensor:
    """Spatial gradient of ``vectors[p] . interpolated features[p]`` per point.

    ``out[p, a] = sum_j weights[a, p, j] table[corner_idx[p, j], :D] . vectors[p]``
    with D = ``vectors.shape[1]``: the derivative of the interpolated first
    D channels along axis a, contracted with a per-point vector (e.g. the
    cotangent of an MLP's first layer, which turns the feature derivatives
    into the derivative of the MLP output). Equal to
    ``(interpolate_table(table, corner_idx, [w0; weights], D)[1] *
    vectors).sum(-1).t()``, but differentiable w.r.t. ``table`` AND
    ``vectors`` with a cheaper backward pass: the derivative of ``out``
    w.r.t. a (point, corner) pair is rank one, so the table gradient is one
    weighted scatter of ``vectors`` (not one per axis) and no (A, P, D)
    tensor is kept for the backward pass.

    Args:
        table (Tensor): (N, C) rows of a channel-last volume.
        corner_idx (Tensor): (P, 8) rows, from :func:`trilinear_corner_weights`.
        weights (Tensor): (A, P, 8) derivative weights (rows 1: of
            :func:`trilinear_corner_weights` with ``derivatives=True``).
        vectors (Tensor): (P, D) per-point vectors, D <= C.
        row_groups (TableRowGroups, optional): See :func:`interpolate_table`.

    Returns:
        Tensor: (P, A) contracted derivatives w.r.t. the normalised
        coordinates (x, y, z).
    """
    _check_table_args(table, corner_idx, weights, 'interpolate_table_gradient')
    if vectors.dim() != 2 or vectors.shape[0] != corner_idx.shape[0] \
            or not 0 < vectors.shape[1] <= table.shape[1]:
        raise ValueError(f'vectors must be (P, D) with P = {corner_idx.shape[0]} and '
                         f'0 < D <= {table.shape[1]}, got shape {tuple(vectors.shape)}')
    row_groups = _row_groups(corner_idx, table.shape[0], row_groups)
    return _TableGradientContraction.apply(table, row_groups.corner_idx,
                                           weights.to(table.dtype).contiguous(),
                                           vectors.to(table.dtype), row_groups)
