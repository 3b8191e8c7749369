"""Render camera images / depth and LiDAR sweeps of a scene at one instant.

Both sensors ray-cast the same geometry (:mod:`.raycast`), so a LiDAR point
projected into a camera taken at the same time lands on a pixel whose depth
equals the point's camera-frame depth. Motion during a LiDAR sweep (and
camera rolling shutter) is ignored: every ray of a sweep sees the world and
the ego at the sweep's timestamp.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
import torch

from .raycast import BoxSet, RayHits, cast_grid_rays
from .scene_layout import SceneLayout
from .sensor_rig import (LIDAR_MAX_RANGE, LIDAR_TRANSLATION, CameraMount, camera_intrinsics,
                         camera_to_ego_rotation, lidar_beam_elevations, lidar_to_ego_rotation,
                         rotation_z)
from .shading import hit_albedo, lidar_intensity, shade_hits

# rays shaded per step (keeps the shading temporaries in the CPU cache)
SHADE_CHUNK = 1 << 15


@dataclass
class WorldState:
    """Everything renderable at one instant (scene frame, float32).

    Attributes:
        layout (SceneLayout): the scene.
        time (float): seconds since the scene start.
        ego (ndarray): (3,) ego (x, y, yaw).
        boxes (BoxSet): P boxes (static first, then the agents).
        material (Tensor): (P,) int64 material ids.
        color (Tensor): (P, 3) base colours.
        num_static (int): number of static boxes (agent ``a`` is box
            ``num_static + a``).
    """

    layout: SceneLayout
    time: float
    ego: np.ndarray
    boxes: BoxSet
    material: torch.Tensor
    color: torch.Tensor
    num_static: int


def world_state_at(layout: SceneLayout, time: float) -> WorldState:
    """Freeze the scene at ``time`` seconds after its start."""
    boxes, material, color = layout.boxes_at(time)
    return WorldState(layout, float(time), layout.ego_pose(time), boxes,
                      torch.from_numpy(material), torch.from_numpy(color).float(),
                      len(layout.static_boxes))


def sensor_pose(ego: np.ndarray, translation, rot_sensor_to_ego: np.ndarray):
    """Sensor origin (3,) and sensor->scene rotation (3, 3) for an ego pose (x, y, yaw)."""
    rot_ego = rotation_z(float(ego[2]))
    origin = np.array([ego[0], ego[1], 0.0]) + rot_ego @ np.asarray(translation, dtype=np.float64)
    return origin, rot_ego @ rot_sensor_to_ego


def camera_pose(state: WorldState, mount: CameraMount):
    """Camera origin (3,) and camera->scene rotation (3, 3), float64."""
    return sensor_pose(state.ego, mount.translation, camera_to_ego_rotation(mount))


_BOX_EDGES = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7],
                           [0, 4], [1, 5], [2, 6], [3, 7]])


def camera_rects(boxes: BoxSet, origins: np.ndarray, rotations: np.ndarray,
                 intrinsics: np.ndarray, width: int, height: int,
                 near: float = 0.05) -> torch.Tensor:
    """Pixel rectangles (row0, row1, col0, col1) bounding each box's projection.

    Each box is clipped by the plane ``z = near`` (its corners in front plus
    the crossings of its 12 edges with the plane), so boxes that pass beside
    or behind a camera get a tight rectangle instead of the full image.

    Args:
        boxes (BoxSet): P boxes, scene frame.
        origins (ndarray): (G, 3) camera centres, scene frame, metres.
        rotations (ndarray): (G, 3, 3) camera->scene rotations.
        intrinsics (ndarray): (G, 3, 3) pinhole intrinsics.
        width (int): image width, pixels.
        height (int): image height, pixels.
        near (float): clipping distance, metres.

    Returns:
        Tensor: (G, P, 4) int64 rectangles, clamped to the image.
    """
    corners = boxes.corners().double()[None] - torch.from_numpy(origins)[:, None, None]
    cam = torch.einsum('gpkc,gcd->gpkd', corners, torch.from_numpy(rotations))
    a, b = cam[:, :, _BOX_EDGES[:, 0]], cam[:, :, _BOX_EDGES[:, 1]]
    za, zb = a[..., 2], b[..., 2]
    crosses = (za - near) * (zb - near) < 0
    w = ((near - za) / torch.where(crosses, zb - za, torch.ones_like(za))).clamp(0, 1)
    cut = a + w[..., None] * (b - a)
    pts = torch.cat([cam, cut], 2)
    valid = torch.cat([cam[..., 2] >= near, crosses], 2)
    z = pts[..., 2].clamp(min=near)
    k = torch.from_numpy(intrinsics)[:, None, None]
    u = k[..., 0, 0] * pts[..., 0] / z + k[..., 0, 2]
    v = k[..., 1, 1] * pts[..., 1] / z + k[..., 1, 2]
    big = torch.tensor(1e9, dtype=torch.float64)
    col0 = torch.floor(torch.where(valid, u, big).min(-1).values).clamp(0, width)
    col1 = (torch.ceil(torch.where(valid, u, -big).max(-1).values) + 1).clamp(0, width)
    row0 = torch.floor(torch.where(valid, v, big).min(-1).values).clamp(0, height)
    row1 = (torch.ceil(torch.where(valid, v, -big).max(-1).values) + 1).clamp(0, height)
    rects = torch.stack([row0, row1, col0, col1], -1)
    rects = torch.where(valid.any(-1)[..., None], rects, torch.zeros_like(rects))
    return rects.long()


def camera_pixel_directions(intrinsics: np.ndarray, pixels: torch.Tensor) -> torch.Tensor:
    """Camera-frame ray directions (N, 3) with z = 1 through pixels (N, 2) (u, v)."""
    u = (pixels[:, 0] - intrinsics[0, 2]) / intrinsics[0, 0]
    v = (pixels[:, 1] - intrinsics[1, 2]) / intrinsics[1, 1]
    return torch.stack([u, v, torch.ones_like(u)], 1)


def camera_grid_directions(intrinsics: np.ndarray, rotations: np.ndarray, width: int,
                           height: int) -> torch.Tensor:
    """Scene-frame directions of every pixel of G cameras, camera-frame z = 1.

    Args:
        intrinsics (ndarray): (G, 3, 3) pinhole intrinsics.
        rotations (ndarray): (G, 3, 3) camera->scene rotations.
        width (int): image width, pixels.
        height (int): image height, pixels.

    Returns:
        Tensor: (G * H * W, 3) float32 directions, camera-major then
        row-major (pixel centres at integer (u, v)); channel-major storage
        (a transposed (3, G * H * W) tensor) so each component is contiguous.
    """
    k = torch.from_numpy(intrinsics)
    rot = torch.from_numpy(rotations)
    u = (torch.arange(width, dtype=torch.float64)[None] - k[:, 0, 2, None]) / k[:, 0, 0, None]
    v = (torch.arange(height, dtype=torch.float64)[None] - k[:, 1, 2, None]) / k[:, 1, 1, None]
    # scene direction = R @ (u, v, 1): columns of R weighted by u, v and 1, built
    # channel-major (3, G, H, W)
    r = rot.permute(1, 2, 0)[..., None, None]
    dirs = (u[:, None, :] * r[:, 0] + v[:, :, None] * r[:, 1]) + r[:, 2]
    return dirs.reshape(3, -1).float().t()


def _rig_arrays(state: WorldState, mounts: Sequence[CameraMount], image_size):
    poses = [camera_pose(state, m) for m in mounts]
    origins = np.stack([p[0] for p in poses])
    rotations = np.stack([p[1] for p in poses])
    intrinsics = np.stack([camera_intrinsics(m, image_size) for m in mounts])
    return origins, rotations, intrinsics


def render_cameras(state: WorldState, mounts: Sequence[CameraMount], image_size: Tuple[int, int],
                   with_coverage: bool = False) -> dict:
    """Ray-cast the images of several cameras at once.

    Args:
        state (WorldState): the world at the cameras' timestamp.
        mounts (Sequence[CameraMount]): N_cam cameras.
        image_size (tuple): (W, H) pixels.
        with_coverage (bool): also count the pixels covered by each box.

    Returns:
        dict: ``rgb`` (N_cam, H, W, 3) uint8; ``depth`` (N_cam, H, W) float32
        camera z-depth in metres (``inf`` for sky); ``prim`` (N_cam, H, W)
        int64 hit box id (``GROUND_ID`` / ``MISS_ID``); ``coverage``
        (N_cam, P) int64 pixels whose ray intersects each box, occluded or
        not (zeros unless ``with_coverage``).
    """
    width, height = int(image_size[0]), int(image_size[1])
    num_cams = len(mounts)
    origins, rotations, intrinsics = _rig_arrays(state, mounts, (width, height))
    dirs = camera_grid_directions(intrinsics, rotations, width, height)
    rects = camera_rects(state.boxes, origins, rotations, intrinsics, width, height)
    hits = cast_grid_rays(torch.from_numpy(origins).float(), dirs, width, state.boxes, rects,
                          with_coverage=with_coverage)
    num_rays = dirs.shape[0]
    rgb = torch.empty(3, num_rays, dtype=torch.uint8)
    # shade in cache-sized runs of rays, channel-major
    for start in range(0, num_rays, SHADE_CHUNK):
        stop = min(start + SHADE_CHUNK, num_rays)
        part = hits.narrow(start, stop)
        albedo = hit_albedo(part, state.layout, state.material, state.color,
                            state.boxes.half_sizes)
        rgb[:, start:stop] = torch.round(shade_hits(part, dirs[start:stop], albedo).t() * 255)
    shape = (num_cams, height, width)
    rgb = rgb.t().reshape(*shape, 3).contiguous()
    return dict(rgb=rgb.numpy(), depth=hits.t.reshape(shape).numpy(),
                prim=hits.prim.reshape(shape).numpy(), coverage=hits.coverage.numpy())


def cast_camera_depth(state: WorldState, mount: CameraMount, image_size: Tuple[int, int],
                      pixels: np.ndarray) -> np.ndarray:
    """Ray-cast camera z-depth at arbitrary (sub-)pixel positions.

    Args:
        state (WorldState): the world at the camera's timestamp.
        mount (CameraMount): the camera.
        image_size (tuple): (W, H) of the image the pixels refer to.
        pixels (ndarray): (N, 2) image coordinates (u, v), pixel centres at
            integers.

    Returns:
        ndarray: (N,) float32 z-depth in metres (``inf`` where the ray sees sky).
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim != 2 or pixels.shape[1] != 2:
        raise ValueError(f'cast_camera_depth: pixels must be (N, 2), got {pixels.shape}')
    width, height = int(image_size[0]), int(image_size[1])
    origins, rotations, intrinsics = _rig_arrays(state, [mount], (width, height))
    d_cam = camera_pixel_directions(intrinsics[0], torch.from_numpy(pixels))
    dirs = (d_cam @ torch.from_numpy(rotations[0]).T).float()
    num = dirs.shape[0]
    if num == 0:
        return np.zeros(0, dtype=np.float32)
    # test the query rays against every box whose projection meets the image
    image_rects = camera_rects(state.boxes, origins, rotations, intrinsics, width, height)[0]
    seen = (image_rects[:, [1, 3]] > image_rects[:, [0, 2]]).all(1)
    rects = torch.tensor([0, 1, 0, num], dtype=torch.int64) * seen[:, None]
    hits = cast_grid_rays(torch.from_numpy(origins).float(), dirs, num, state.boxes, rects)
    return hits.t.numpy()


def lidar_pose(state: WorldState):
    """LiDAR origin (3,) and lidar->scene rotation (3, 3), float64."""
    return sensor_pose(state.ego, LIDAR_TRANSLATION, lidar_to_ego_rotation())


def _lidar_rects(state: WorldState, origin, rot, num_cols: int, elevations: np.ndarray,
                 max_range: float) -> torch.Tensor:
    """Beam/azimuth rectangle bounding each box as seen from the LiDAR."""
    boxes = state.boxes
    corners = boxes.corners().double() - torch.from_numpy(origin)
    local = corners @ torch.from_numpy(rot)
    az = torch.atan2(local[..., 1], local[..., 0])
    centre = torch.atan2(local[..., 1].mean(1), local[..., 0].mean(1))[:, None]
    rel = torch.remainder(az - centre + np.pi, 2 * np.pi) - np.pi
    az_lo = centre[:, 0] + rel.min(1).values
    az_hi = centre[:, 0] + rel.max(1).values
    # horizontal distance from the sensor to the footprint (in the box frame)
    o = torch.from_numpy(origin).float() - boxes.centers
    cos, sin = torch.cos(boxes.yaws), torch.sin(boxes.yaws)
    ox = (cos * o[:, 0] + sin * o[:, 1]).abs() - boxes.half_sizes[:, 0]
    oy = (-sin * o[:, 0] + cos * o[:, 1]).abs() - boxes.half_sizes[:, 1]
    d_min = torch.hypot(ox.clamp(min=0), oy.clamp(min=0)).double()
    d_max = torch.hypot(corners[..., 0], corners[..., 1]).max(1).values
    inside = d_min <= 1e-6
    z_top = (boxes.centers[:, 2] + boxes.half_sizes[:, 2]).double() - origin[2]
    z_bot = (boxes.centers[:, 2] - boxes.half_sizes[:, 2]).double() - origin[2]
    e_hi = torch.atan2(z_top, torch.where(z_top > 0, d_min, d_max))
    e_lo = torch.atan2(z_bot, torch.where(z_bot > 0, d_max, d_min))
    e0 = float(elevations[0])
    de = float(elevations[1] - elevations[0])
    rows = len(elevations)
    row0 = torch.floor((e_lo - e0) / de).clamp(0, rows)
    row1 = (torch.ceil((e_hi - e0) / de) + 1).clamp(0, rows)
    daz = 2 * np.pi / num_cols
    col0 = torch.floor(az_lo / daz)
    col1 = torch.minimum(torch.ceil(az_hi / daz) + 1, col0 + num_cols)
    col0 = torch.where(inside, torch.zeros_like(col0), col0)
    col1 = torch.where(inside, torch.full_like(col1, num_cols), col1)
    rects = torch.stack([row0, row1, col0, col1], 1)
    rects = torch.where((d_min > max_range)[:, None], torch.zeros_like(rects), rects)
    return rects.long()


def lidar_directions(num_cols: int) -> torch.Tensor:
    """Lidar-frame unit directions (32 * num_cols, 3), ring-major, azimuth CCW from +x."""
    elev = torch.from_numpy(lidar_beam_elevations())
    az = torch.arange(num_cols, dtype=torch.float64) * (2 * np.pi / num_cols)
    ee, aa = torch.meshgrid(elev, az, indexing='ij')
    return torch.stack([torch.cos(ee) * torch.cos(aa), torch.cos(ee) * torch.sin(aa),
                        torch.sin(ee)], -1).reshape(-1, 3)


def render_lidar(state: WorldState, num_cols: int, max_range: float = LIDAR_MAX_RANGE) -> dict:
    """Ray-cast one LiDAR sweep (32 beams x ``num_cols`` azimuths).

    Args:
        state (WorldState): the world at the sweep's timestamp.
        num_cols (int): azimuth steps per revolution (1084 ~ HDL-32E at 20 Hz).
        max_range (float): returns beyond this range (metres) are dropped.

    Returns:
        dict: ``points`` (N, 5) float32 (x, y, z, intensity, ring) in the
        LiDAR frame (metres, intensity in [0, 255], ring 0..31 from the
        lowest beam); ``prim`` (N,) int64 box id of each point
        (``GROUND_ID`` for ground); ``scene_xyz`` (N, 3) float32 points in
        the scene frame.
    """
    if num_cols < 8:
        raise ValueError(f'render_lidar: num_cols must be >= 8, got {num_cols}')
    origin, rot = lidar_pose(state)
    d_lidar = lidar_directions(num_cols)
    dirs = (d_lidar @ torch.from_numpy(rot).T).float()
    elevations = lidar_beam_elevations()
    rects = _lidar_rects(state, origin, rot, num_cols, elevations, max_range)
    o = torch.from_numpy(origin).float()[None]
    hits = cast_grid_rays(o, dirs, num_cols, state.boxes, rects, max_t=max_range)
    valid = torch.isfinite(hits.t)
    albedo = hit_albedo(hits, state.layout, state.material, state.color, state.boxes.half_sizes)
    intensity = lidar_intensity(hits, dirs, albedo)
    ring = torch.arange(len(elevations)).repeat_interleave(num_cols).float()
    scene_xyz = o + hits.t[:, None] * dirs
    local = ((scene_xyz.double() - torch.from_numpy(origin)) @ torch.from_numpy(rot)).float()
    points = torch.cat([local, intensity[:, None], ring[:, None]], 1)[valid]
    return dict(points=points.numpy(), prim=hits.prim[valid].numpy(),
                scene_xyz=scene_xyz[valid].numpy())


def count_points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Number of points inside each oriented box.

    Args:
        points (ndarray): (N, 3) points, same frame as the boxes (metres).
        boxes (ndarray): (A, 7) (x, y, z, w, l, h, yaw) boxes; (x, y, z) is
            the centre, l along the box heading.

    Returns:
        ndarray: (A,) int64 counts (boundary counts as inside).
    """
    p = torch.from_numpy(np.asarray(points, dtype=np.float64))
    b = torch.from_numpy(np.asarray(boxes, dtype=np.float64))
    if len(b) == 0 or len(p) == 0:
        return np.zeros(len(b), dtype=np.int64)
    # points below every box bottom or above every top cannot be inside
    z_lo = (b[:, 2] - b[:, 5] / 2).min()
    z_hi = (b[:, 2] + b[:, 5] / 2).max()
    p = p[(p[:, 2] >= z_lo) & (p[:, 2] <= z_hi)]
    d = p[None, :, :] - b[:, None, :3]
    cos, sin = torch.cos(b[:, 6])[:, None], torch.sin(b[:, 6])[:, None]
    x = cos * d[..., 0] + sin * d[..., 1]
    y = -sin * d[..., 0] + cos * d[..., 1]
    inside = (x.abs() <= b[:, None, 4] / 2) & (y.abs() <= b[:, None, 3] / 2) \
        & (d[..., 2].abs() <= b[:, None, 5] / 2)
    return inside.sum(1).numpy().astype(np.int64)


__all__ = ['WorldState', 'world_state_at', 'render_cameras', 'camera_rects',
           'camera_grid_directions', 'cast_camera_depth', 'render_lidar',
           'count_points_in_boxes', 'camera_pose', 'lidar_pose', 'RayHits']
