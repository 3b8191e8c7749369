"""Procedural textures, Lambert shading and sky for ray-cast hits.

Albedo comes from analytic textures evaluated at the hit point: asphalt with
lane markings, zebra crossings, stop lines and parking bays on the ground;
tiled sidewalks; windowed facades; vehicles with glass bands and dark
wheels; dressed pedestrians; striped barriers and cones. Colours are RGB in
[0, 1]. The same albedo drives the LiDAR intensity.
"""
import torch

from .raycast import GROUND_ID, MISS_ID, RayHits
from .scene_layout import (CROSS_HALF_WIDTH, CROSS_LENGTH, LANE_WIDTH, MATERIAL_ID,
                           ROAD_HALF_WIDTH, SceneLayout)

SUN_DIRECTION = (0.45, 0.3, 0.84)
SKY_HORIZON = (0.86, 0.89, 0.93)
SKY_ZENITH = (0.33, 0.53, 0.84)


def hash_noise(ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
    """Deterministic value in [0, 1) per integer lattice cell (int64 inputs)."""
    h = ix * 374761393 + iy * 668265263
    h = torch.bitwise_xor(h, h >> 13) * 1274126177
    h = torch.bitwise_xor(h, h >> 16)
    return (h & 0xFFFF).float() / 65536.0


def _cell_noise(x: torch.Tensor, y: torch.Tensor, cell: float) -> torch.Tensor:
    return hash_noise(torch.floor(x / cell).long(), torch.floor(y / cell).long())


def _mix(base: torch.Tensor, color, mask: torch.Tensor) -> torch.Tensor:
    color = base.new_tensor(color).expand_as(base)
    return torch.where(mask[:, None], color, base)


def ground_albedo(xy: torch.Tensor, layout: SceneLayout) -> torch.Tensor:
    """Albedo (N, 3) of ground points ``xy`` (N, 2), scene frame, metres."""
    x, y = xy[:, 0], xy[:, 1]
    xc = layout.cross_x
    x0, x1 = layout.x_range
    cx0, cx1, cy0, cy1 = layout.carpark
    main = (y.abs() <= ROAD_HALF_WIDTH) & (x >= x0) & (x <= x1)
    cross = ((x - xc).abs() <= CROSS_HALF_WIDTH) & (y.abs() <= CROSS_LENGTH)
    park = (x >= cx0) & (x <= cx1) & (y >= cy0) & (y <= cy1)
    paved = main | cross | park
    noise = 0.7 * _cell_noise(x, y, 0.35) + 0.3 * _cell_noise(x, y, 2.0)
    asphalt = (0.24 + 0.08 * noise)[:, None] * xy.new_tensor([1.0, 1.0, 1.04])
    dirt = (0.8 + 0.3 * noise)[:, None] * xy.new_tensor([0.36, 0.38, 0.24])
    albedo = torch.where(paved[:, None], asphalt, dirt)
    white, yellow = (0.86, 0.86, 0.84), (0.85, 0.68, 0.12)
    away = (x - xc).abs() > CROSS_HALF_WIDTH + 5.5
    dashes = torch.remainder(x, 9.0) < 3.0
    lane_line = main & away & dashes & ((y.abs() - LANE_WIDTH).abs() < 0.08)
    centre = main & away & (y.abs() > 0.08) & (y.abs() < 0.2)
    edge = main & ((x - xc).abs() > CROSS_HALF_WIDTH) & (y.abs() > ROAD_HALF_WIDTH - 0.25) \
        & (y.abs() < ROAD_HALF_WIDTH - 0.1)
    side_centre = cross & (y.abs() > 12.5) & ((x - xc).abs() < 0.1)
    stripes_main = main & ((x - xc).abs() >= 7.0) & ((x - xc).abs() <= 11.0) \
        & (torch.remainder(torch.floor(y / 0.6), 2) == 0)
    stripes_cross = cross & (y.abs() >= 7.2) & (y.abs() <= 9.8) \
        & (torch.remainder(torch.floor((x - xc) / 0.6), 2) == 0)
    s = layout.drive_side
    stop = main & (((x >= xc - 12.0) & (x <= xc - 11.5) & (y * s >= 0))
                   | ((x >= xc + 11.5) & (x <= xc + 12.0) & (y * s <= 0)))
    bay = park & (torch.remainder(x - cx0 - 0.15, 2.9) < 0.12) \
        & (((y.abs() - 10.3) < 5.5) | ((y.abs() - 10.3) > 18.2))
    albedo = _mix(albedo, white, lane_line | edge | stripes_main | stripes_cross | stop | bay)
    return _mix(albedo, yellow, centre | side_centre)


def box_albedo(hits: RayHits, on_box: torch.Tensor, material: torch.Tensor, color: torch.Tensor,
               half_sizes: torch.Tensor) -> torch.Tensor:
    """Albedo (N, 3) of box hits (rays selected by ``on_box``).

    Args:
        hits (RayHits): all hits; ``hits.local`` holds box-frame points.
        on_box (Tensor): (R,) bool rays that hit a box.
        material (Tensor): (P,) int64 material ids.
        color (Tensor): (P, 3) base colours.
        half_sizes (Tensor): (P, 3) box half extents.
    """
    idx = hits.prim[on_box]
    local = hits.local[on_box]
    half = half_sizes[idx]
    mat = material[idx]
    base = color[idx].clone()
    zn = (local[:, 2] + half[:, 2]) / (2 * half[:, 2])
    height = local[:, 2] + half[:, 2]
    top = hits.normal[on_box][:, 2] > 0.5
    # horizontal coordinate along the hit face
    along = torch.where((local[:, 0].abs() - half[:, 0]).abs() < 1e-3, local[:, 1], local[:, 0])
    m = MATERIAL_ID
    noise = _cell_noise(local[:, 0] + 7.0 * idx, local[:, 1] + local[:, 2], 0.5)
    # sidewalk tiles and curb
    tile = (torch.remainder(local[:, 0], 1.0) < 0.05) | (torch.remainder(local[:, 1], 1.0) < 0.05)
    albedo = base * (0.9 + 0.2 * noise)[:, None]
    albedo = torch.where(((mat == m['sidewalk']) & tile & top)[:, None], base * 0.7, albedo)
    # building windows and shop floor
    building = (mat == m['building']) & ~top
    window = building & (torch.remainder(along, 3.0) > 0.8) & (torch.remainder(along, 3.0) < 2.2) \
        & (torch.remainder(height, 3.2) > 1.0) & (torch.remainder(height, 3.2) < 2.4) \
        & (height > 3.5)
    shop = building & (height < 3.0) & (torch.remainder(along, 6.0) < 4.5) & (height > 0.4)
    albedo = _mix(albedo, (0.16, 0.2, 0.27), window)
    albedo = _mix(albedo, (0.22, 0.25, 0.28), shop)
    albedo = torch.where(((mat == m['building']) & top)[:, None], albedo * 0.6, albedo)
    # vehicles: glass band, dark wheels/bumper
    vehicle = mat == m['vehicle']
    albedo = _mix(albedo, (0.1, 0.12, 0.15), vehicle & ~top & (zn > 0.6) & (zn < 0.9))
    albedo = _mix(albedo, (0.07, 0.07, 0.07), vehicle & (zn < 0.2))
    # pedestrians: head, shirt (base colour), trousers
    ped = mat == m['pedestrian']
    albedo = _mix(albedo, (0.78, 0.62, 0.5), ped & (zn > 0.87))
    albedo = _mix(albedo, (0.15, 0.15, 0.3), ped & (zn < 0.47))
    # cycles: dark wheels below, frame colour above
    albedo = _mix(albedo, (0.1, 0.1, 0.1), (mat == m['cycle']) & (zn < 0.45))
    # cones and barriers: white reflective bands
    albedo = _mix(albedo, (0.95, 0.95, 0.95), (mat == m['cone']) & (zn > 0.45) & (zn < 0.65))
    red_band = torch.remainder(torch.floor((local[:, 1] + half[:, 1]) / 0.5), 2) == 0
    albedo = _mix(albedo, (0.85, 0.1, 0.1), (mat == m['barrier']) & red_band)
    return albedo.clamp(0, 1)


def hit_albedo(hits: RayHits, layout: SceneLayout, material: torch.Tensor, color: torch.Tensor,
               half_sizes: torch.Tensor) -> torch.Tensor:
    """Albedo (R, 3) of every ray's hit (zeros for misses)."""
    albedo = hits.t.new_zeros(hits.t.shape[0], 3)
    ground = hits.prim == GROUND_ID
    albedo[ground] = ground_albedo(hits.local[ground, :2], layout)
    on_box = hits.prim >= 0
    if on_box.any():
        albedo[on_box] = box_albedo(hits, on_box, material, color, half_sizes)
    return albedo


def sky_color(directions: torch.Tensor) -> torch.Tensor:
    """Sky gradient (R, 3) from horizon to zenith for scene-frame directions (R, 3)."""
    elev = directions[:, 2] / directions.norm(dim=1)
    w = (elev * 2.5).clamp(0, 1)[:, None]
    horizon = directions.new_tensor(SKY_HORIZON)
    zenith = directions.new_tensor(SKY_ZENITH)
    return horizon * (1 - w) + zenith * w


def shade_hits(hits: RayHits, directions: torch.Tensor, albedo: torch.Tensor,
               fog_distance: float = 350.0) -> torch.Tensor:
    """Lambert shading with a sun and ambient term, distance fog and sky.

    ``rgb = albedo * (0.38 + 0.62 * max(0, n . sun))``, blended towards the
    sky horizon colour by ``1 - exp(-range / fog_distance)``.

    Args:
        hits (RayHits): R hits.
        directions (Tensor): (R, 3) scene-frame ray directions.
        albedo (Tensor): (R, 3) albedo in [0, 1].
        fog_distance (float): fog e-folding distance, metres.

    Returns:
        Tensor: (R, 3) colours in [0, 1].
    """
    sun = directions.new_tensor(SUN_DIRECTION)
    sun = sun / sun.norm()
    lambert = (hits.normal * sun).sum(1).clamp(min=0)
    rgb = albedo * (0.38 + 0.62 * lambert)[:, None]
    sky = sky_color(directions)
    t = torch.where(hits.prim == MISS_ID, torch.zeros_like(hits.t), hits.t)
    dist = t * directions.norm(dim=1)
    fog = (1 - torch.exp(-dist / fog_distance))[:, None]
    rgb = rgb * (1 - fog) + sky * fog
    return torch.where((hits.prim == MISS_ID)[:, None], sky, rgb).clamp(0, 1)


def lidar_intensity(hits: RayHits, directions: torch.Tensor, albedo: torch.Tensor) -> torch.Tensor:
    """LiDAR return intensity in [0, 255] from albedo and incidence angle (R,)."""
    cos = (hits.normal * directions).sum(1).abs() / directions.norm(dim=1)
    lum = albedo.mean(1)
    return torch.round((255.0 * lum.pow(1.5) * cos.sqrt()).clamp(0, 255))


__all__ = ['ground_albedo', 'box_albedo', 'hit_albedo', 'shade_hits', 'sky_color',
           'lidar_intensity', 'hash_noise']
