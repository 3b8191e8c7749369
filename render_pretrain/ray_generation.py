"""Camera rays for rendering losses: LiDAR-supervised rays and pixel-grid rays.

MIM4D renders, per target camera, a fixed budget of rays: rays through the
pixels hit by LiDAR points (3 m < depth < 50 m; they carry a depth target),
padded with rays through random pixels below the sky (RGB target only).

Layout: rays are PACKED. R rays live in flat tensors, and ``batch_idx`` /
``cam_idx`` say which sample and camera each ray belongs to; no Python loop
runs over batch items or cameras, and the camera count is read from
``lidar2img``.

Frames and units: ray origins are camera centres and directions are unit
vectors, both in the LiDAR (ego) frame of the sample, metres. Pixels are
(u, v) = (column, row) in the (augmented) image ``lidar2img`` maps to, with
integer values at pixel centres (see :mod:`render_pretrain.camera_geometry`).

Depth definitions (the renderer integrates along unit directions, so its
depth is the RAY DISTANCE ``t = |p - o|``):

* ``depth``: ray distance from the camera centre to the LiDAR point, metres;
  the target for the rendered depth.
* ``z_depth``: the same point's depth along the optical axis (what a depth
  map stores), ``z_depth = t * cos(theta)`` with ``cos(theta) = d . a`` for
  the unit optical axis ``a``; see :func:`ray_distance_to_z_depth`.

``lidar2img`` (B, N_cam, 4, 4) is the full LiDAR-to-image projection
(intrinsics @ extrinsics, optionally with image/LiDAR augmentation folded
in, see :func:`render_pretrain.camera_geometry.compose_lidar2img`). Its third
row must give the z-depth (true for pinhole intrinsics and for augmentation
matrices that only act on (u, v)).
"""
import math
from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .camera_geometry import project_points_to_image, unproject_pixels_to_lidar

__all__ = [
    'CameraRays',
    'camera_centers',
    'optical_axes',
    'ray_distance_to_z_depth',
    'generate_lidar_rays',
    'sample_ground_pixels',
    'generate_pixel_rays',
    'sample_camera_rays',
]


class CameraRays(NamedTuple):
    """Packed camera rays (R rays).

    Attributes:
        origins (Tensor): (R, 3) camera centres, LiDAR frame, metres.
        directions (Tensor): (R, 3) unit directions, LiDAR frame.
        depth (Tensor): (R,) target ray distance in metres (0 where
            ``has_depth`` is False).
        z_depth (Tensor): (R,) target depth along the optical axis, metres
            (0 where ``has_depth`` is False).
        pixels (Tensor): (R, 2) (u, v) image pixels, column and row.
        batch_idx (Tensor): (R,) int64 sample index in [0, B).
        cam_idx (Tensor): (R,) int64 camera index in [0, N_cam).
        has_depth (Tensor): (R,) bool, True for LiDAR rays.
    """
    origins: Tensor
    directions: Tensor
    depth: Tensor
    z_depth: Tensor
    pixels: Tensor
    batch_idx: Tensor
    cam_idx: Tensor
    has_depth: Tensor


def _check_lidar2img(lidar2img: Tensor) -> None:
    if lidar2img.dim() != 4 or lidar2img.shape[-2:] != (4, 4):
        raise ValueError(f'lidar2img must be (B, N_cam, 4, 4), got {tuple(lidar2img.shape)}')


def camera_centers(lidar2img: Tensor) -> Tensor:
    """Camera centres in the LiDAR frame from the projection matrices.

    The centre is the point the projection maps to (u d, v d, d) = 0:
    ``inv(lidar2img) @ (0, 0, 0, 1)``.

    Args:
        lidar2img (Tensor): (B, N_cam, 4, 4) LiDAR-to-image projections.

    Returns:
        Tensor: (B, N_cam, 3) camera centres, LiDAR frame, metres.
    """
    _check_lidar2img(lidar2img)
    zero = lidar2img.new_zeros(lidar2img.shape[:2] + (1, 3))
    return _unproject(zero, lidar2img)[:, :, 0]


def _unproject(pixels_depth: Tensor, lidar2img: Tensor) -> Tensor:
    """(B, N, S, 3) (u, v, z-depth) -> (B, N, S, 3) LiDAR points.

    ``lidar2img`` folds intrinsics and extrinsics together, so unprojecting
    with identity intrinsics and ``cam2lidar = inv(lidar2img)`` is exact.
    """
    eye = torch.eye(4, dtype=lidar2img.dtype, device=lidar2img.device).expand_as(lidar2img)
    return unproject_pixels_to_lidar(pixels_depth, eye, torch.linalg.inv(lidar2img))


def optical_axes(lidar2img: Tensor) -> Tensor:
    """Unit optical axis of each camera in the LiDAR frame.

    The third row of ``lidar2img`` gives ``z_depth = a . p + c``, so its
    normalised first three entries are the axis ``a``.

    Args:
        lidar2img (Tensor): (..., 4, 4) LiDAR-to-image projections.

    Returns:
        Tensor: (..., 3) unit optical axes, LiDAR frame.
    """
    return F.normalize(lidar2img[..., 2, :3], dim=-1)


def ray_distance_to_z_depth(ray_distance: Tensor, directions: Tensor, axes: Tensor) -> Tensor:
    """Convert ray distance to z-depth: ``z = t * (d . a)``.

    Divide by the same cosine for the inverse conversion
    (``t = z / (d . a)``; the cosine is positive for any ray through the
    image of a camera with field of view below 180 degrees).

    Args:
        ray_distance (Tensor): (R,) distances along unit directions, metres.
        directions (Tensor): (R, 3) unit ray directions.
        axes (Tensor): (R, 3) unit optical axes of each ray's camera.

    Returns:
        Tensor: (R,) depth along the optical axis, metres.

    Example:
        >>> d = torch.tensor([[0.6, 0., 0.8]])
        >>> ray_distance_to_z_depth(torch.tensor([10.]), d, torch.tensor([[0., 0., 1.]]))
        tensor([8.])
    """
    return ray_distance * (directions * axes).sum(-1)


def generate_lidar_rays(points: Tensor,
                        lidar2img: Tensor,
                        image_size: Sequence[int],
                        point_batch_idx: Optional[Tensor] = None,
                        min_depth: float = 3.0,
                        max_depth: float = 50.0) -> CameraRays:
    """One ray per (LiDAR point, camera of its sample) where the point is visible.

    Every point is projected into every camera of its own sample (memory
    P x N_cam x 16 floats for the gathered projections); the pair becomes a
    ray when the pixel falls inside the image (``-0.5 <= u < W - 0.5``, same
    for v), the point is in front of
    the camera and its ray distance ``t`` satisfies
    ``min_depth < t < max_depth``. The range filter is applied to the ray
    distance from the camera, i.e. to the depth target itself.

    Args:
        points (Tensor): (P, 3) LiDAR points of all samples, packed, LiDAR
            frame of their sample, metres (extra feature columns are not
            accepted: slice them off first).
        lidar2img (Tensor): (B, N_cam, 4, 4) projections.
        image_size (Sequence[int]): (H, W) of the image the pixels refer to.
        point_batch_idx (Tensor, optional): (P,) int64 sample of each point;
            required when B > 1.
        min_depth (float): Exclusive lower bound of the ray distance, metres.
        max_depth (float): Exclusive upper bound of the ray distance, metres.

    Returns:
        CameraRays: R rays, ``has_depth`` all True, ordered by point then camera.
    """
    _check_lidar2img(lidar2img)
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f'points must be (P, 3) x, y, z in metres, got {tuple(points.shape)}')
    bsz, num_cams = lidar2img.shape[:2]
    if point_batch_idx is None:
        if bsz != 1:
            raise ValueError(f'point_batch_idx (P,) is required when lidar2img has B = {bsz} > 1')
        point_batch_idx = points.new_zeros(points.shape[0], dtype=torch.long)
    if point_batch_idx.shape != points.shape[:1]:
        raise ValueError(f'point_batch_idx must be (P,) = {tuple(points.shape[:1])}, '
                         f'got {tuple(point_batch_idx.shape)}')
    img_h, img_w = (int(s) for s in image_size)
    points = points.to(lidar2img.dtype)
    # (P, N_cam, 1, 2) and (P, N_cam, 1): each point in its sample's cameras.
    uv, z_depth = project_points_to_image(points[:, None, None, :], lidar2img[point_batch_idx])
    uv, z_depth = uv[:, :, 0], z_depth[:, :, 0]
    centers = camera_centers(lidar2img)  # (B, N_cam, 3)
    offsets = points[:, None, :] - centers[point_batch_idx]  # (P, N_cam, 3)
    distance = offsets.norm(dim=-1)
    visible = ((z_depth > 0) & (uv[..., 0] >= -0.5) & (uv[..., 0] < img_w - 0.5)
               & (uv[..., 1] >= -0.5) & (uv[..., 1] < img_h - 0.5)
               & (distance > min_depth) & (distance < max_depth))
    point_ids, cam_ids = visible.nonzero(as_tuple=True)
    depth = distance[point_ids, cam_ids]
    batch_ids = point_batch_idx[point_ids]
    return CameraRays(
        origins=centers[batch_ids, cam_ids],
        directions=offsets[point_ids, cam_ids] / depth.unsqueeze(-1),
        depth=depth,
        z_depth=z_depth[point_ids, cam_ids],
        pixels=uv[point_ids, cam_ids],
        batch_idx=batch_ids,
        cam_idx=cam_ids,
        has_depth=torch.ones_like(depth, dtype=torch.bool))


def sample_ground_pixels(batch_size: int,
                         num_cams: int,
                         image_size: Sequence[int],
                         num_rays: int,
                         generator: Optional[torch.Generator] = None,
                         horizon_fraction: float = 0.0,
                         sky_mask: Optional[Tensor] = None,
                         device: Optional[torch.device] = None,
                         dtype: torch.dtype = torch.float32):
    """Draw ``num_rays`` distinct pixel centres per camera, avoiding the sky.

    Allowed pixels are the rows ``v >= ceil(horizon_fraction * H)`` that are
    not sky in ``sky_mask``. Each camera draws without replacement among its
    allowed pixels (random keys from ``generator``, top-k), so a camera with
    fewer allowed pixels than ``num_rays`` returns some invalid slots.

    Args:
        batch_size (int): B.
        num_cams (int): N_cam.
        image_size (Sequence[int]): (H, W) pixels.
        num_rays (int): K pixels per camera.
        generator (torch.Generator, optional): Randomness source.
        horizon_fraction (float): Fraction of the rows (from the top) that are
            treated as sky, in [0, 1).
        sky_mask (Tensor, optional): (B, N_cam, H, W) bool, True on sky.
        device (torch.device, optional): Device of the outputs.
        dtype (torch.dtype): Float dtype of the pixel coordinates.

    Returns:
        tuple[Tensor, Tensor]: pixels (B, N_cam, K, 2) as (u, v), and valid
        (B, N_cam, K) bool.
    """
    img_h, img_w = (int(s) for s in image_size)
    if not 0.0 <= horizon_fraction < 1.0:
        raise ValueError(f'horizon_fraction must be in [0, 1), got {horizon_fraction}')
    if num_rays > img_h * img_w:
        raise ValueError(f'num_rays {num_rays} exceeds the {img_h}x{img_w} pixels of a camera')
    if sky_mask is not None:
        if sky_mask.shape != (batch_size, num_cams, img_h, img_w):
            raise ValueError(f'sky_mask must be (B, N_cam, H, W) = '
                             f'{(batch_size, num_cams, img_h, img_w)}, got {tuple(sky_mask.shape)}')
        device = sky_mask.device
    first_row = math.ceil(horizon_fraction * img_h)
    keys = torch.rand(batch_size * num_cams, img_h * img_w, generator=generator, device=device)
    allowed = torch.zeros(img_h, img_w, dtype=torch.bool, device=keys.device)
    allowed[first_row:] = True
    allowed = allowed.view(1, -1)
    if sky_mask is not None:
        allowed = allowed & ~sky_mask.reshape(batch_size * num_cams, -1).bool()
    keys = torch.where(allowed, keys, keys.new_full((), -1.0))
    top_keys, flat = keys.topk(num_rays, dim=-1)
    pixels = torch.stack([flat % img_w, flat // img_w], dim=-1).to(dtype)
    shape = (batch_size, num_cams, num_rays)
    return pixels.view(shape + (2,)), (top_keys >= 0).view(shape)


def generate_pixel_rays(pixels: Tensor, lidar2img: Tensor):
    """Rays through given pixels of every camera.

    Args:
        pixels (Tensor): (B, N_cam, K, 2) (u, v) pixels per camera.
        lidar2img (Tensor): (B, N_cam, 4, 4) projections.

    Returns:
        tuple[Tensor, Tensor]: origins (B, N_cam, K, 3) camera centres and
        unit directions (B, N_cam, K, 3), LiDAR frame.
    """
    _check_lidar2img(lidar2img)
    if pixels.dim() != 4 or pixels.shape[:2] != lidar2img.shape[:2] or pixels.shape[-1] != 2:
        raise ValueError(f'pixels must be (B, N_cam, K, 2) matching lidar2img '
                         f'{tuple(lidar2img.shape)}, got {tuple(pixels.shape)}')
    pixels = pixels.to(lidar2img.dtype)
    unit = torch.cat([pixels, pixels.new_ones(pixels.shape[:-1] + (1,))], dim=-1)
    far_points = _unproject(unit, lidar2img)  # points at z-depth 1 m
    centers = camera_centers(lidar2img).unsqueeze(2)
    return centers.expand_as(far_points), F.normalize(far_points - centers, dim=-1)


def _keep_per_group(group: Tensor, quota: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Indices of a random subset with at most ``quota[g]`` members of each group g."""
    num = group.numel()
    perm = torch.randperm(num, generator=generator, device='cpu').to(group.device)
    order = perm[torch.sort(group[perm], stable=True).indices]
    sorted_group = group[order]
    counts = torch.bincount(sorted_group, minlength=quota.numel())
    starts = counts.cumsum(0) - counts
    rank = torch.arange(num, device=group.device) - starts[sorted_group]
    return order[rank < quota[sorted_group]].sort().values


def sample_camera_rays(points: Tensor,
                       lidar2img: Tensor,
                       image_size: Sequence[int],
                       rays_per_camera: int,
                       generator: Optional[torch.Generator] = None,
                       point_batch_idx: Optional[Tensor] = None,
                       lidar_fraction: float = 1.0,
                       min_depth: float = 3.0,
                       max_depth: float = 50.0,
                       horizon_fraction: float = 0.0,
                       sky_mask: Optional[Tensor] = None) -> CameraRays:
    """A fixed budget of rays per camera: LiDAR rays first, padded with pixel rays.

    Each camera receives ``min(#visible LiDAR points, floor(lidar_fraction *
    K))`` LiDAR rays chosen at random, and the rest of its budget ``K =
    rays_per_camera`` is filled with rays through random non-sky pixels
    (:func:`sample_ground_pixels`). All cameras thus get exactly K rays unless
    a sky mask leaves fewer than K allowed pixels.

    Args:
        points (Tensor): (P, 3) packed LiDAR points, metres, LiDAR frame.
        lidar2img (Tensor): (B, N_cam, 4, 4) projections.
        image_size (Sequence[int]): (H, W) pixels.
        rays_per_camera (int): K, the ray budget of each camera.
        generator (torch.Generator, optional): Randomness source (CPU).
        point_batch_idx (Tensor, optional): (P,) sample of each point.
        lidar_fraction (float): Largest share of the budget for LiDAR rays.
        min_depth (float): LiDAR rays need a ray distance above this, metres.
        max_depth (float): LiDAR rays need a ray distance below this, metres.
        horizon_fraction (float): Top fraction of rows excluded for pixel rays.
        sky_mask (Tensor, optional): (B, N_cam, H, W) bool, True on sky.

    Returns:
        CameraRays: LiDAR rays (grouped by sample and camera) followed by
        pixel rays (ordered by sample, camera).
    """
    _check_lidar2img(lidar2img)
    bsz, num_cams = lidar2img.shape[:2]
    lidar = generate_lidar_rays(points, lidar2img, image_size, point_batch_idx,
                                min_depth, max_depth)
    group = lidar.batch_idx * num_cams + lidar.cam_idx
    lidar_budget = int(lidar_fraction * rays_per_camera)
    quota = torch.full((bsz * num_cams,), lidar_budget, dtype=torch.long, device=group.device)
    keep = _keep_per_group(group, quota, generator)
    lidar = CameraRays(*(field[keep] for field in lidar))
    # Order LiDAR rays by camera so that downstream per-camera views are contiguous.
    by_cam = torch.sort(group[keep], stable=True).indices
    lidar = CameraRays(*(field[by_cam] for field in lidar))
    num_lidar = torch.bincount(group[keep], minlength=bsz * num_cams)

    pixels, valid = sample_ground_pixels(bsz, num_cams, image_size, rays_per_camera, generator,
                                         horizon_fraction, sky_mask, lidar2img.device,
                                         lidar2img.dtype)
    slot = torch.arange(rays_per_camera, device=valid.device).view(1, 1, -1)
    valid = valid & (slot < (rays_per_camera - num_lidar).view(bsz, num_cams, 1))
    origins, directions = generate_pixel_rays(pixels, lidar2img)
    batch_ids = torch.arange(bsz, device=valid.device).view(-1, 1, 1).expand_as(valid)
    cam_ids = torch.arange(num_cams, device=valid.device).view(1, -1, 1).expand_as(valid)
    zeros = pixels.new_zeros(int(valid.sum()))
    pixel = CameraRays(origins[valid], directions[valid], zeros, zeros, pixels[valid],
                       batch_ids[valid], cam_ids[valid],
                       torch.zeros_like(zeros, dtype=torch.bool))
    return CameraRays(*(torch.cat(pair, dim=0) for pair in zip(lidar, pixel)))
