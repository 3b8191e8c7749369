"""Exact, vectorised ray casting against a ground plane and yaw-oriented boxes.

Every surface of the synthetic world is either the ground plane ``z = 0`` or
a box that is rotated about the vertical axis only (buildings, sidewalks,
vehicles, pedestrians, poles...). Ray/box intersection is the slab test done
in the box frame, so hits are exact up to float rounding.

Rays are laid out on a regular grid (camera pixels, or LiDAR beams x
azimuth columns). Instead of testing every ray against every box, each box
gives a conservative rectangle of grid cells (``rows``, ``cols``) that it can
cover; only the (ray, box) pairs inside those rectangles are tested. The pair
list is built with ``repeat_interleave`` (no Python loop over rays or boxes)
and processed in chunks to bound memory.

Conventions:
    * Box ids are ``0..P-1``; :data:`GROUND_ID` marks a ground hit and
      :data:`MISS_ID` a ray that hits nothing within ``max_t``.
    * ``t`` is the ray parameter: the hit point is ``origin + t * direction``.
      With unit directions ``t`` is the range in metres; with camera
      directions whose camera-frame z equals 1 it is the z-depth in metres.
"""
from dataclasses import dataclass

import torch

GROUND_ID = -1
MISS_ID = -2


@dataclass
class BoxSet:
    """Yaw-oriented boxes in one frame (the scene frame, metres).

    Attributes:
        centers (Tensor): (P, 3) box centres.
        half_sizes (Tensor): (P, 3) half extents along the box's own
            (x=length, y=width, z=height) axes.
        yaws (Tensor): (P,) rotation about +z in radians (box x axis in the
            scene frame is ``(cos yaw, sin yaw, 0)``).
    """

    centers: torch.Tensor
    half_sizes: torch.Tensor
    yaws: torch.Tensor

    def __len__(self) -> int:
        return int(self.centers.shape[0])

    def corners(self) -> torch.Tensor:
        """Return the 8 corners of every box, (P, 8, 3)."""
        signs = self.centers.new_tensor([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1)
                                         for sz in (-1, 1)])
        local = signs[None] * self.half_sizes[:, None]
        cos, sin = torch.cos(self.yaws)[:, None], torch.sin(self.yaws)[:, None]
        x = cos * local[..., 0] - sin * local[..., 1]
        y = sin * local[..., 0] + cos * local[..., 1]
        return torch.stack([x, y, local[..., 2]], dim=-1) + self.centers[:, None]


@dataclass
class RayHits:
    """Nearest hit per ray.

    Attributes:
        t (Tensor): (R,) ray parameter of the hit (``inf`` for a miss).
        prim (Tensor): (R,) int64 hit box id, ``GROUND_ID`` or ``MISS_ID``.
        normal (Tensor): (R, 3) unit surface normal at the hit (scene frame),
            zeros for a miss.
        local (Tensor): (R, 3) hit point in the hit box's frame (for the
            ground: the scene-frame point), used for texturing.
        coverage (Tensor): (G, P) int64 number of rays of each sensor group
            that intersect each box anywhere along the ray (occluded or not).
    """

    t: torch.Tensor
    prim: torch.Tensor
    normal: torch.Tensor
    local: torch.Tensor
    coverage: torch.Tensor

    def narrow(self, start: int, stop: int) -> 'RayHits':
        """Hits of rays ``start:stop`` (views; ``coverage`` is shared)."""
        part = slice(start, stop)
        return RayHits(self.t[part], self.prim[part], self.normal[part], self.local[part],
                       self.coverage)


def _to_box_frame(points: torch.Tensor, boxes: BoxSet, idx: torch.Tensor,
                  is_direction: bool) -> torch.Tensor:
    """Express scene-frame points/directions (N, 3) in the frames of boxes ``idx`` (N,)."""
    cos, sin = torch.cos(boxes.yaws)[idx], torch.sin(boxes.yaws)[idx]
    p = points if is_direction else points - boxes.centers[idx]
    x = cos * p[:, 0] + sin * p[:, 1]
    y = -sin * p[:, 0] + cos * p[:, 1]
    return torch.stack([x, y, p[:, 2]], dim=-1)


def intersect_ray_box_pairs(origins: torch.Tensor, directions: torch.Tensor,
                            boxes: BoxSet, box_idx: torch.Tensor):
    """Slab test for explicit (ray, box) pairs.

    Args:
        origins (Tensor): (N, 3) ray origins, scene frame, metres.
        directions (Tensor): (N, 3) ray directions (need not be unit).
        boxes (BoxSet): the boxes.
        box_idx (Tensor): (N,) int64 box of each pair.

    Returns:
        tuple: ``t_enter`` (N,) entry parameter (``inf`` when the ray misses
        the box or starts inside it), ``axis`` (N,) int64 entry face axis
        (0, 1, 2 in the box frame) and ``sign`` (N,) the entry face side
        (-1 or +1).
    """
    o = _to_box_frame(origins, boxes, box_idx, is_direction=False)
    d = _to_box_frame(directions, boxes, box_idx, is_direction=True)
    tiny = torch.finfo(d.dtype).tiny
    eps = torch.where(d < 0, -d.new_tensor(1e-12), d.new_tensor(1e-12))
    d = torch.where(d.abs() < 1e-12, eps, d)
    half = boxes.half_sizes[box_idx]
    inv = 1.0 / d
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    t_near = torch.minimum(t1, t2)
    t_far = torch.maximum(t1, t2)
    t_enter, axis = t_near.max(dim=1)
    t_exit = t_far.min(dim=1).values
    hit = (t_enter <= t_exit) & (t_enter > tiny)
    t_enter = torch.where(hit, t_enter, torch.full_like(t_enter, float('inf')))
    d_axis = d.gather(1, axis[:, None])[:, 0]
    sign = torch.where(d_axis > 0, -torch.ones_like(d_axis), torch.ones_like(d_axis))
    return t_enter, axis, sign


def build_grid_pairs(rects: torch.Tensor, num_cols: int, box_start: int, box_stop: int):
    """Enumerate the (ray, box) pairs covered by the grid rectangles of some boxes.

    Box ``p`` covers rows ``rects[p, 0] <= r < rects[p, 1]`` and the
    ``rects[p, 3] - rects[p, 2]`` columns starting at ``rects[p, 2]``, taken
    modulo ``num_cols`` (so a rectangle may wrap around a 360 degree sweep).
    Pairs are enumerated per rectangle row (segment), then per column of a
    segment, with ``repeat_interleave`` and no integer division.

    Args:
        rects (Tensor): (P, 4) int64 (row0, row1, col0, col1).
        num_cols (int): grid width C (ray index = row * C + col).
        box_start (int): first box of the chunk.
        box_stop (int): one past the last box of the chunk.

    Returns:
        tuple: ``ray_idx`` (N,) and ``box_idx`` (N,) int64, pairs listed box
        by box, row-major inside a box.
    """
    chunk = rects[box_start:box_stop]
    device = rects.device
    widths = (chunk[:, 3] - chunk[:, 2]).clamp(min=0)
    heights = torch.where(widths > 0, (chunk[:, 1] - chunk[:, 0]).clamp(min=0),
                          torch.zeros_like(widths))
    ids = torch.arange(box_start, box_stop, dtype=torch.int64, device=device)
    # one segment per rectangle row, then one pair per column of a segment (no division)
    seg_rect = torch.repeat_interleave(torch.arange(len(chunk), device=device), heights)
    seg_row = chunk[:, 0].index_select(0, seg_rect) \
        + torch.arange(len(seg_rect), dtype=torch.int64, device=device) \
        - torch.repeat_interleave(torch.cumsum(heights, 0) - heights, heights)
    seg_width = widths.index_select(0, seg_rect)
    seg_col0 = chunk[:, 2].index_select(0, seg_rect)
    seg_first = torch.cumsum(seg_width, 0) - seg_width
    pair_seg = torch.repeat_interleave(torch.arange(len(seg_rect), device=device), seg_width)
    counter = torch.arange(len(pair_seg), dtype=torch.int64, device=device)
    box_idx = ids.index_select(0, seg_rect).index_select(0, pair_seg)
    if bool((chunk[:, 2] < 0).any()) or bool((chunk[:, 3] > num_cols).any()):
        col = torch.remainder((seg_col0 - seg_first).index_select(0, pair_seg) + counter,
                              num_cols)
        return (seg_row * num_cols).index_select(0, pair_seg) + col, box_idx
    ray_idx = (seg_row * num_cols + seg_col0 - seg_first).index_select(0, pair_seg) + counter
    return ray_idx, box_idx


def _box_chunks(areas: torch.Tensor, chunk_size: int):
    """Split boxes into consecutive ranges holding about ``chunk_size`` pairs each."""
    cum = torch.cumsum(areas, 0)
    total = int(cum[-1]) if len(cum) else 0
    if total == 0:
        return []
    marks = torch.tensor(list(range(chunk_size, total, chunk_size)), dtype=torch.int64)
    ends = torch.searchsorted(cum, marks, right=True).tolist() + [len(areas)]
    bounds, start = [], 0
    for end in ends:
        end = max(end, start + 1)
        if start < len(areas) and end > start:
            bounds.append((start, min(end, len(areas))))
        start = min(end, len(areas))
    return bounds


_ID_BITS = 20
# rays per step of the per-ray stages (keeps temporaries in the CPU cache)
_TAIL_CHUNK = 1 << 15


def _float_key(t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Pack non-negative float32 ``t`` and ids < 2**20 into int64 keys ordered by (t, id)."""
    bits = t.contiguous().view(torch.int32).to(torch.int64)
    return (bits << _ID_BITS) | ids


def cast_grid_rays(origins: torch.Tensor, directions: torch.Tensor, num_cols: int,
                   boxes: BoxSet, rects: torch.Tensor, max_t: float = float('inf'),
                   chunk_size: int = 1 << 18, with_coverage: bool = False) -> RayHits:
    """Nearest hit of grid-structured rays against the ground and boxes.

    The rays form G groups (one per sensor) of equal size; all rays of a
    group share one origin, and each group is a grid of ``rows x num_cols``
    rays (ray index = (g * rows + row) * num_cols + col). Per ray, the
    nearest (t, box) is found with a single ``scatter_reduce`` (``amin``)
    over int64 keys that pack the float32 bit pattern of ``t`` (monotonic
    for t >= 0) above the box id, so ties go to the lower id and the result
    does not depend on chunking or thread count.

    Args:
        origins (Tensor): (G, 3) (or (3,) for G = 1) origin of each group,
            scene frame, metres.
        directions (Tensor): (R, 3) float32 ray directions, R = G * rows * num_cols.
        num_cols (int): grid width.
        boxes (BoxSet): P boxes, G * P < 2**20 - 1.
        rects (Tensor): (G, P, 4) (or (P, 4) for G = 1) int64 conservative
            rectangles (row0, row1, col0, col1) in each group's own grid
            (see :func:`build_grid_pairs`); empty rectangles are allowed.
        max_t (float): hits beyond this parameter count as misses.
        chunk_size (int): (ray, box) pairs tested at once; the default keeps
            a chunk's temporaries in the CPU cache.
        with_coverage (bool): also count, per group and box, the rays that
            intersect the box.

    Returns:
        RayHits: nearest hit per ray; ``coverage`` is (G, P) (all zeros
        unless ``with_coverage``).
    """
    origins = origins.reshape(-1, 3).to(directions.dtype)
    num_groups = origins.shape[0]
    num_rays = directions.shape[0]
    num_boxes = len(boxes)
    rects = rects.reshape(num_groups, -1, 4)
    if rects.shape[1] != num_boxes or num_rays % (num_groups * num_cols):
        raise ValueError(f'cast_grid_rays: rects {tuple(rects.shape)} / {num_rays} rays do not '
                         f'match {num_groups} groups x {num_boxes} boxes x {num_cols} columns')
    if num_groups * num_boxes >= (1 << _ID_BITS) - 1:
        raise ValueError(f'cast_grid_rays supports fewer than {(1 << _ID_BITS) - 1} '
                         f'(group, box) pairs, got {num_groups * num_boxes}')
    rows = num_rays // (num_groups * num_cols)
    origin_z = origins[:, 2].repeat_interleave(rows * num_cols)
    ground_code = (1 << _ID_BITS) - 1
    dz = directions[:, 2]
    inf = torch.full_like(dz, float('inf'))
    t_ground = torch.where(dz < 0, -origin_z / dz.clamp(max=-1e-12), inf)
    key = _float_key(t_ground, torch.full((num_rays,), ground_code, dtype=torch.int64))
    coverage = torch.zeros(num_groups * num_boxes, dtype=torch.int64)
    # per (group, box): slab bounds relative to the group origin in the box frame
    # (-h - o, h - o per box axis), cos and sin of the yaw; (8, G * P)
    rel = origins[:, None] - boxes.centers[None]
    cos, sin = torch.cos(boxes.yaws)[None].expand_as(rel[..., 0]), \
        torch.sin(boxes.yaws)[None].expand_as(rel[..., 0])
    half = boxes.half_sizes[None].expand_as(rel)
    o_box = torch.stack([cos * rel[..., 0] + sin * rel[..., 1],
                         -sin * rel[..., 0] + cos * rel[..., 1], rel[..., 2]], -1)
    box_params = torch.stack([-half[..., 0] - o_box[..., 0], half[..., 0] - o_box[..., 0],
                              -half[..., 1] - o_box[..., 1], half[..., 1] - o_box[..., 1],
                              -half[..., 2] - o_box[..., 2], half[..., 2] - o_box[..., 2],
                              cos, sin], 0).reshape(8, -1).to(directions.dtype).contiguous()
    directions_t = directions.t().contiguous()
    offset = (torch.arange(num_groups, dtype=torch.int64) * rows)[:, None]
    flat_rects = torch.stack([rects[..., 0] + offset, rects[..., 1] + offset,
                              rects[..., 2], rects[..., 3]], -1).reshape(-1, 4)
    areas = ((flat_rects[:, 1] - flat_rects[:, 0]).clamp(min=0)
             * (flat_rects[:, 3] - flat_rects[:, 2]).clamp(min=0))
    missed_t = torch.tensor(float('inf'), dtype=directions.dtype)
    for box_start, box_stop in _box_chunks(areas, chunk_size):
        ray_idx, pair_box = build_grid_pairs(flat_rects, num_cols, box_start, box_stop)
        d = directions_t.index_select(1, ray_idx)
        bp = box_params.index_select(1, pair_box)
        cos_p, sin_p = bp[6], bp[7]
        d_box = (cos_p * d[0] + sin_p * d[1], cos_p * d[1] - sin_p * d[0], d[2])
        t_enter = None
        t_exit = None
        for axis, d_c in enumerate(d_box):
            # 1 / 0 = inf; a ray lying exactly in a slab plane gets 0 * inf = NaN, which
            # fails both hit comparisons below (a grazing ray misses)
            inv = torch.reciprocal(d_c)
            t1 = bp[2 * axis] * inv
            t2 = bp[2 * axis + 1] * inv
            lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
            t_enter = lo if t_enter is None else torch.maximum(t_enter, lo)
            t_exit = hi if t_exit is None else torch.minimum(t_exit, hi)
        hit = (t_enter <= t_exit) & (t_enter > 0)
        if with_coverage:
            coverage += torch.bincount(pair_box[hit], minlength=num_groups * num_boxes)
        # a missed pair gets t = inf, which never beats a finite hit
        pair_key = _float_key(torch.where(hit, t_enter, missed_t), pair_box)
        key.scatter_reduce_(0, ray_idx, pair_key, reduce='amin')
    code = key & ground_code
    best_t = (key >> _ID_BITS).to(torch.int32).view(torch.float32).to(directions.dtype)
    box_of_code = torch.arange(num_groups * num_boxes + 1, dtype=torch.int64) \
        .remainder_(max(num_boxes, 1))
    box_of_code[-1] = GROUND_ID
    best_id = box_of_code[code.clamp(max=num_groups * num_boxes)]
    miss = ~torch.isfinite(best_t) | (best_t > max_t)
    best_id = torch.where(miss, torch.full_like(best_id, MISS_ID), best_id)
    best_t = torch.where(miss, torch.full_like(best_t, float('inf')), best_t)
    # per-ray stages in cache-sized runs, channel-major: hits.normal / hits.local are
    # (R, 3) views of (3, R) tensors
    box_table = torch.cat([boxes.centers.t(), 1.0 / boxes.half_sizes.t(),
                           torch.cos(boxes.yaws)[None], torch.sin(boxes.yaws)[None]]
                          ).to(directions.dtype)
    if num_boxes == 0:
        box_table = box_table.new_zeros(8, 1)
    origin_t = origins.t().contiguous()
    normal = directions.new_empty(3, num_rays)
    local = directions.new_empty(3, num_rays)
    group_rays = rows * num_cols
    for start in range(0, num_rays, _TAIL_CHUNK):
        stop = min(start + _TAIL_CHUNK, num_rays)
        group = torch.arange(start, stop) // group_rays
        normal[:, start:stop], local[:, start:stop] = _hit_geometry(
            origin_t.index_select(1, group), directions_t[:, start:stop], best_t[start:stop],
            best_id[start:stop], box_table)
    normal, local = normal.t(), local.t()
    return RayHits(best_t, best_id, normal, local, coverage.reshape(num_groups, num_boxes))


def _hit_geometry(origin_t: torch.Tensor, direction_t: torch.Tensor, t: torch.Tensor,
                  prim: torch.Tensor, box_table: torch.Tensor):
    """Surface normal and box-frame hit point of each ray's nearest hit.

    Channel-major (3, N) tensors keep every per-ray operation on contiguous
    1-D data. The hit face of a box is the axis where the box-frame hit
    point is closest (relative to the half size) to the surface (the first
    such axis on ties). Every ray goes through the same arithmetic (misses
    and ground hits use box 0 and are then overwritten), so no boolean
    indexing is needed.

    Args:
        origin_t (Tensor): (3, N) ray origins, scene frame, metres.
        direction_t (Tensor): (3, N) ray directions.
        t (Tensor): (N,) hit parameter (``inf`` for a miss).
        prim (Tensor): (N,) hit id (box, ``GROUND_ID`` or ``MISS_ID``).
        box_table (Tensor): (8, P) per box: centre (3), 1 / half size (3),
            cos yaw, sin yaw.

    Returns:
        tuple: ``normal`` (3, N) and ``local`` (3, N) (box-frame point on
        boxes, scene-frame point elsewhere).
    """
    t_safe = torch.where(torch.isfinite(t), t, torch.zeros_like(t))
    point = origin_t + t_safe * direction_t
    on_box = prim >= 0
    params = box_table.index_select(1, prim.clamp(min=0))
    cos, sin = params[6], params[7]
    rel = point - params[0:3]
    lx = cos * rel[0] + sin * rel[1]
    ly = cos * rel[1] - sin * rel[0]
    lz = rel[2]
    ratio = torch.stack([lx, ly, lz]).abs_().mul_(params[3:6])
    face_x = (ratio[0] >= ratio[1]) & (ratio[0] >= ratio[2])
    face_y = ~face_x & (ratio[1] >= ratio[2])
    face_z = ~face_x & ~face_y
    zero = torch.zeros_like(t)
    nx = torch.where(face_x, torch.sign(lx), zero)
    ny = torch.where(face_y, torch.sign(ly), zero)
    nz = torch.where(face_z, torch.sign(lz), zero)
    box_normal = torch.stack([cos * nx - sin * ny, sin * nx + cos * ny, nz])
    up = (prim == GROUND_ID).to(t.dtype)
    normal = torch.where(on_box, box_normal, torch.stack([zero, zero, up]))
    local = torch.where(on_box, torch.stack([lx, ly, lz]), point)
    return normal, local
