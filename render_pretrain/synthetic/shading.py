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


def _mix(base_t: torch.Tensor, color, mask: torch.Tensor) -> torch.Tensor:
    """Replace channel-major colours (3, N) by ``color`` where ``mask`` (N,)."""
    return torch.where(mask, base_t.new_tensor(color)[:, None], base_t)


def _length(directions: torch.Tensor) -> torch.Tensor:
    """Row norms (N,) of (N, 3) vectors (column arithmetic, fast on any layout)."""
    x, y, z = directions.unbind(1)
    return torch.sqrt(x * x + y * y + z * z)


def ground_albedo(xy: torch.Tensor, layout: SceneLayout) -> torch.Tensor:
    """Albedo (N, 3) (channel-major storage) of ground points ``xy`` (N, 2), scene frame, metres."""
    x, y = xy[:, 0], xy[:, 1]
    xc = layout.cross_x
    x0, x1 = layout.x_range
    cx0, cx1, cy0, cy1 = layout.carpark
    main = (y.abs() <= ROAD_HALF_WIDTH) & (x >= x0) & (x <= x1)
    cross = ((x - xc).abs() <= CROSS_HALF_WIDTH) & (y.abs() <= CROSS_LENGTH)
    park = (x >= cx0) & (x <= cx1) & (y >= cy0) & (y <= cy1)
    paved = main | cross | park
    noise = 0.7 * _cell_noise(x, y, 0.35) + 0.3 * _cell_noise(x, y, 2.0)
    # channel-major (3, N) colours
    asphalt = xy.new_tensor([1.0, 1.0, 1.04])[:, None] * (0.24 + 0.08 * noise)
    dirt = xy.new_tensor([0.36, 0.38, 0.24])[:, None] * (0.8 + 0.3 * noise)
    albedo = torch.where(paved, asphalt, dirt)
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
    return _mix(albedo, yellow, centre | side_centre).t()


# palette of the box details that replace the base colour (index 0 = keep the base colour)
_DETAIL_COLORS = (
    (0.0, 0.0, 0.0),
    (0.16, 0.2, 0.27),     # 1 building window
    (0.22, 0.25, 0.28),    # 2 shop floor
    (0.1, 0.12, 0.15),     # 3 vehicle glass band
    (0.07, 0.07, 0.07),    # 4 vehicle wheels / bumper
    (0.78, 0.62, 0.5),     # 5 pedestrian head
    (0.15, 0.15, 0.3),     # 6 pedestrian trousers
    (0.1, 0.1, 0.1),       # 7 cycle wheels
    (0.95, 0.95, 0.95),    # 8 cone reflective band
    (0.85, 0.1, 0.1),      # 9 barrier red band
)


def box_albedo(hits: RayHits, material: torch.Tensor, color: torch.Tensor,
               half_sizes: torch.Tensor) -> torch.Tensor:
    """Albedo (R, 3) (channel-major storage) of box hits, computed for every
    ray (only meaningful where ``hits.prim >= 0``; other rays are textured as
    if they hit box 0).

    The base colour is scaled by a per-hit factor (noise, sidewalk tile
    joints, darker roofs); details (windows, glass, wheels, bands...) then
    replace it with a palette colour. Both are chosen with 1-D masks, so
    only the last step touches three channels, and no boolean indexing is
    needed.

    Args:
        hits (RayHits): R hits; ``hits.local`` holds box-frame points.
        material (Tensor): (P,) int64 material ids.
        color (Tensor): (P, 3) base colours.
        half_sizes (Tensor): (P, 3) box half extents.
    """
    if len(material) == 0:
        return hits.t.new_zeros(hits.t.shape[0], 3)
    idx = hits.prim.clamp(min=0)
    lx, ly, lz = hits.local.unbind(1)
    hx, hy, hz = half_sizes.t().index_select(1, idx)
    mat = material.index_select(0, idx)
    zn = (lz + hz) / (2 * hz)
    height = lz + hz
    top = hits.normal[:, 2] > 0.5
    # horizontal coordinate along the hit face
    along = torch.where((lx.abs() - hx).abs() < 1e-3, ly, lx)
    m = MATERIAL_ID
    noise = _cell_noise(lx + 7.0 * idx, ly + lz, 0.5)
    factor = 0.9 + 0.2 * noise
    # sidewalk tile joints, darker roofs
    tile = (torch.remainder(lx, 1.0) < 0.05) | (torch.remainder(ly, 1.0) < 0.05)
    factor = torch.where((mat == m['sidewalk']) & tile & top, factor.new_tensor(0.7), factor)
    building = mat == m['building']
    factor = torch.where(building & top, factor * 0.6, factor)
    # details are mutually exclusive (one material per box, disjoint height bands), so their
    # palette codes add up
    along3, height32 = torch.remainder(along, 3.0), torch.remainder(height, 3.2)
    facade = building & ~top
    vehicle = mat == m['vehicle']
    ped = mat == m['pedestrian']
    red_band = torch.remainder(torch.floor((ly + hy) / 0.5), 2) == 0
    details = (
        # building windows and shop floor
        (1, facade & (along3 > 0.8) & (along3 < 2.2) & (height32 > 1.0) & (height32 < 2.4)
         & (height > 3.5)),
        (2, facade & (height < 3.0) & (torch.remainder(along, 6.0) < 4.5) & (height > 0.4)),
        # vehicles: glass band, dark wheels/bumper
        (3, vehicle & ~top & (zn > 0.6) & (zn < 0.9)),
        (4, vehicle & (zn < 0.2)),
        # pedestrians: head, shirt (base colour), trousers
        (5, ped & (zn > 0.87)),
        (6, ped & (zn < 0.47)),
        # cycles: dark wheels below, frame colour above
        (7, (mat == m['cycle']) & (zn < 0.45)),
        # cones and barriers: white reflective bands, red stripes
        (8, (mat == m['cone']) & (zn > 0.45) & (zn < 0.65)),
        (9, (mat == m['barrier']) & red_band),
    )
    detail = torch.zeros_like(idx)
    for code, mask in details:
        detail += mask * code
    keep = (detail == 0).to(factor.dtype)
    # channel-major (3, N): base colour x factor where no detail, palette colour elsewhere
    base = (color.t().index_select(1, idx) * factor).clamp_(0, 1) * keep
    palette = color.new_tensor(_DETAIL_COLORS).t()
    return (base + palette.index_select(1, detail)).t()


def hit_albedo(hits: RayHits, layout: SceneLayout, material: torch.Tensor, color: torch.Tensor,
               half_sizes: torch.Tensor) -> torch.Tensor:
    """Albedo (R, 3) (channel-major storage) of every ray's hit (zeros for misses)."""
    on_box = (hits.prim >= 0).to(hits.t.dtype)
    albedo_t = box_albedo(hits, material, color, half_sizes).t() * on_box
    ground = torch.nonzero(hits.prim == GROUND_ID)[:, 0]
    if len(ground):
        xy = torch.stack([hits.local[:, 0].index_select(0, ground),
                          hits.local[:, 1].index_select(0, ground)], 1)
        albedo_t[:, ground] = ground_albedo(xy, layout).t()
    return albedo_t.t()


def sky_color(directions: torch.Tensor) -> torch.Tensor:
    """Sky gradient (R, 3) (channel-major storage) from horizon to zenith for
    scene-frame directions (R, 3)."""
    elev = directions[:, 2] / _length(directions)
    w = (elev * 2.5).clamp(0, 1)
    horizon = directions.new_tensor(SKY_HORIZON)[:, None]
    zenith = directions.new_tensor(SKY_ZENITH)[:, None]
    return (horizon * (1 - w) + zenith * w).t()


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
        Tensor: (R, 3) colours in [0, 1] (channel-major storage).
    """
    sun = directions.new_tensor(SUN_DIRECTION)
    sun = (sun / sun.norm()).tolist()
    n = hits.normal
    lambert = (n[:, 0] * sun[0] + n[:, 1] * sun[1] + n[:, 2] * sun[2]).clamp(min=0)
    rgb = albedo.t() * (0.38 + 0.62 * lambert)
    sky = sky_color(directions).t()
    miss = hits.prim == MISS_ID
    t = torch.where(miss, torch.zeros_like(hits.t), hits.t)
    dist = t * _length(directions)
    # misses get fog 1: pure sky
    fog = torch.where(miss, torch.ones_like(t), 1 - torch.exp(-dist / fog_distance))
    rgb = rgb * (1 - fog) + sky * fog
    return rgb.clamp_(0, 1).t()


def lidar_intensity(hits: RayHits, directions: torch.Tensor, albedo: torch.Tensor) -> torch.Tensor:
    """LiDAR return intensity in [0, 255] from albedo and incidence angle (R,)."""
    n, d = hits.normal, directions
    cos = (n[:, 0] * d[:, 0] + n[:, 1] * d[:, 1] + n[:, 2] * d[:, 2]).abs() / _length(d)
    lum = (albedo[:, 0] + albedo[:, 1] + albedo[:, 2]) / 3
    return torch.round((255.0 * lum.pow(1.5) * cos.sqrt()).clamp(0, 255))


__all__ = ['ground_albedo', 'box_albedo', 'hit_albedo', 'shade_hits', 'sky_color',
           'lidar_intensity', 'hash_noise']
