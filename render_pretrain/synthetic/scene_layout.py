"""Procedural street layout and traffic of one synthetic scene.

A scene is a straight main road (two lanes per direction, 3.5 m lanes)
crossed by a side street, with raised sidewalks, a row of buildings on both
sides, street lamps and trees, a car park and a construction zone. The ego
vehicle drives along the main road; other agents follow straight constant
speed trajectories (so velocities are exact), parked objects stay put.

Everything is described in the *scene frame*: x along the main road, y to
its left, z up, metres, origin near the middle of the ego trajectory. The
scene frame is placed in the global (map) frame by ``origin_xy`` and
``origin_yaw``. ``drive_side`` is -1 for right-hand traffic (Boston) and +1
for left-hand traffic (Singapore): the ego's lanes are on ``y * drive_side >
0``.
"""
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np
import torch

from .object_catalog import CATEGORY_MATERIAL, CATEGORY_SIZE
from .raycast import BoxSet

LANE_WIDTH = 3.5
ROAD_HALF_WIDTH = 7.0
SIDEWALK_OUTER = 10.0
SIDEWALK_HEIGHT = 0.15
CROSS_HALF_WIDTH = 6.0
CROSS_SIDEWALK_OUTER = 9.0
CROSS_LENGTH = 90.0
ROAD_MARGIN = 90.0
BUILDING_SETBACK = 10.3
CARPARK_LENGTH = 32.0
CARPARK_DEPTH = 34.0
# Annotation boxes sit ANNOTATION_LIFT above their support and the rendered
# geometry is the annotation box shrunk by GEOMETRY_MARGIN on every side, so
# every LiDAR return of an object lies strictly inside its annotation box and
# ground returns never do.
ANNOTATION_LIFT = 0.02
GEOMETRY_MARGIN = 0.02

MATERIALS = ('sidewalk', 'building', 'wall', 'pole', 'trunk', 'crown',
             'vehicle', 'pedestrian', 'cycle', 'cone', 'barrier')
MATERIAL_ID = {name: i for i, name in enumerate(MATERIALS)}


@dataclass
class Agents:
    """Dynamic and parked objects (one row per nuScenes instance).

    All arrays have a leading dimension A. Positions are in the scene frame.

    Attributes:
        category (list[str]): nuScenes category names.
        attribute (list[str]): nuScenes attribute name ('' for none).
        size (ndarray): (A, 3) annotation size (w, l, h), metres.
        start (ndarray): (A, 2) xy position at t = 0, metres.
        heading (ndarray): (A,) yaw in radians (constant).
        speed (ndarray): (A,) speed along the heading, m/s.
        on_sidewalk (ndarray): (A,) bool, support is the sidewalk top except
            over the side street.
        color (ndarray): (A, 3) base colour in [0, 1].
    """

    category: List[str] = field(default_factory=list)
    attribute: List[str] = field(default_factory=list)
    size: list = field(default_factory=list)
    start: list = field(default_factory=list)
    heading: list = field(default_factory=list)
    speed: list = field(default_factory=list)
    on_sidewalk: list = field(default_factory=list)
    color: list = field(default_factory=list)

    def add(self, category, attribute, size, xy, heading, speed, color, on_sidewalk=False):
        self.category.append(category)
        self.attribute.append(attribute)
        self.size.append(size)
        self.start.append(xy)
        self.heading.append(heading)
        self.speed.append(speed)
        self.on_sidewalk.append(on_sidewalk)
        self.color.append(color)

    def freeze(self):
        """Convert the list attributes to numpy arrays (call once after adding)."""
        self.size = np.asarray(self.size, dtype=np.float64).reshape(-1, 3)
        self.start = np.asarray(self.start, dtype=np.float64).reshape(-1, 2)
        self.heading = np.asarray(self.heading, dtype=np.float64)
        self.speed = np.asarray(self.speed, dtype=np.float64)
        self.on_sidewalk = np.asarray(self.on_sidewalk, dtype=bool)
        self.color = np.asarray(self.color, dtype=np.float64).reshape(-1, 3)
        return self

    def __len__(self):
        return len(self.category)


@dataclass
class SceneLayout:
    """One scene: static geometry, agents, ego trajectory and map shapes.

    Attributes:
        duration (float): scene length in seconds.
        drive_side (int): -1 right-hand traffic, +1 left-hand traffic.
        origin_xy (tuple): global position of the scene-frame origin, metres.
        origin_yaw (float): global yaw of the scene-frame x axis, radians.
        x_range (tuple): main road extent along x, metres.
        cross_x (float): x of the side street's centre line.
        carpark (tuple): (x0, x1, y0, y1) car-park rectangle.
        static_boxes (BoxSet): P_s static boxes.
        static_material (ndarray): (P_s,) int material ids (``MATERIAL_ID``).
        static_color (ndarray): (P_s, 3) base colours in [0, 1].
        agents (Agents): the nuScenes instances.
        ego_speed (float): mean ego speed, m/s.
        ego_phase (float): phase of the ego's lateral wobble, radians.
    """

    duration: float
    drive_side: int
    origin_xy: Tuple[float, float]
    origin_yaw: float
    x_range: Tuple[float, float]
    cross_x: float
    carpark: Tuple[float, float, float, float]
    static_boxes: BoxSet
    static_material: np.ndarray
    static_color: np.ndarray
    agents: Agents
    ego_speed: float
    ego_phase: float

    # --- ego ---------------------------------------------------------------
    def ego_pose(self, t) -> np.ndarray:
        """Ego pose in the scene frame at times ``t`` (seconds from scene start).

        Returns:
            ndarray: (..., 3) (x, y, yaw) in metres / radians. The ego frame
            origin is on the ground (z = 0).
        """
        t = np.asarray(t, dtype=np.float64)
        v = self.ego_speed
        w_x, w_y = 2 * np.pi / 7.0, 2 * np.pi / 9.0
        x = -0.5 * v * self.duration + v * t + 0.6 * np.sin(w_x * t)
        y = self.drive_side * 1.5 * LANE_WIDTH + 0.25 * np.sin(w_y * t + self.ego_phase)
        dx = v + 0.6 * w_x * np.cos(w_x * t)
        dy = 0.25 * w_y * np.cos(w_y * t + self.ego_phase)
        return np.stack([x, y, np.arctan2(dy, dx)], axis=-1)

    # --- agents ------------------------------------------------------------
    def agent_boxes(self, t: float) -> np.ndarray:
        """Annotation boxes of all agents at time ``t``.

        Returns:
            ndarray: (A, 7) float64 (x, y, z, w, l, h, yaw) in the scene
            frame; (x, y, z) is the box centre.
        """
        a = self.agents
        dist = a.speed * t
        x = a.start[:, 0] + np.cos(a.heading) * dist
        y = a.start[:, 1] + np.sin(a.heading) * dist
        over_street = np.abs(x - self.cross_x) < CROSS_HALF_WIDTH
        base = np.where(a.on_sidewalk & ~over_street, SIDEWALK_HEIGHT, 0.0)
        z = base + ANNOTATION_LIFT + a.size[:, 2] / 2
        return np.concatenate([np.stack([x, y, z], 1), a.size, a.heading[:, None]], axis=1)

    def boxes_at(self, t: float) -> Tuple[BoxSet, np.ndarray, np.ndarray]:
        """All renderable boxes at time ``t``: static boxes then agents.

        Agent geometry is the annotation box shrunk by ``GEOMETRY_MARGIN``.

        Returns:
            tuple: (BoxSet with P = P_s + A float32 boxes in the scene frame,
            material ids (P,), colours (P, 3)).
        """
        ann = self.agent_boxes(t)
        half = np.stack([ann[:, 4], ann[:, 3], ann[:, 5]], 1) / 2 - GEOMETRY_MARGIN
        sb = self.static_boxes
        boxes = BoxSet(
            torch.cat([sb.centers, torch.from_numpy(ann[:, :3]).float()]),
            torch.cat([sb.half_sizes, torch.from_numpy(half).float()]),
            torch.cat([sb.yaws, torch.from_numpy(ann[:, 6]).float()]))
        materials = np.concatenate([self.static_material, np.array(
            [MATERIAL_ID[CATEGORY_MATERIAL[c]] for c in self.agents.category], dtype=np.int64)])
        colors = np.concatenate([self.static_color, self.agents.color])
        return boxes, materials, colors

    # --- frames ------------------------------------------------------------
    def scene_to_global(self, xy: np.ndarray) -> np.ndarray:
        """Map (..., 2) scene-frame xy to the global frame (metres)."""
        c, s = np.cos(self.origin_yaw), np.sin(self.origin_yaw)
        xy = np.asarray(xy, dtype=np.float64)
        gx = c * xy[..., 0] - s * xy[..., 1] + self.origin_xy[0]
        gy = s * xy[..., 0] + c * xy[..., 1] + self.origin_xy[1]
        return np.stack([gx, gy], axis=-1)

    # --- map shapes (scene frame) ----------------------------------------------
    def map_shapes(self) -> dict:
        """Polygons and lines of the map layers, scene frame.

        Returns:
            dict: layer -> list of (K, 2) arrays (polygons: exterior ring;
            lines: polyline). Layers: drivable_area, walkway, ped_crossing,
            stop_line, carpark_area, road_divider, lane_divider, lane (with
            the lane's heading in ``lane_heading``).
        """
        x0, x1 = self.x_range
        xc, s = self.cross_x, self.drive_side
        rect = _rect
        walk = []
        for side in (-1, 1):
            lo, hi = sorted((side * ROAD_HALF_WIDTH, side * SIDEWALK_OUTER))
            walk += [rect(x0, xc - CROSS_HALF_WIDTH, lo, hi),
                     rect(xc + CROSS_HALF_WIDTH, x1, lo, hi)]
            ylo, yhi = sorted((side * SIDEWALK_OUTER, side * CROSS_LENGTH))
            walk += [rect(xc - CROSS_SIDEWALK_OUTER, xc - CROSS_HALF_WIDTH, ylo, yhi),
                     rect(xc + CROSS_HALF_WIDTH, xc + CROSS_SIDEWALK_OUTER, ylo, yhi)]
        crossings = [rect(xc - 11.0, xc - 7.0, -ROAD_HALF_WIDTH, ROAD_HALF_WIDTH),
                     rect(xc + 7.0, xc + 11.0, -ROAD_HALF_WIDTH, ROAD_HALF_WIDTH),
                     rect(xc - CROSS_HALF_WIDTH, xc + CROSS_HALF_WIDTH, 7.2, 9.8),
                     rect(xc - CROSS_HALF_WIDTH, xc + CROSS_HALF_WIDTH, -9.8, -7.2)]
        stop = [rect(xc - 12.0, xc - 11.5, *sorted((0.0, s * ROAD_HALF_WIDTH))),
                rect(xc + 11.5, xc + 12.0, *sorted((0.0, -s * ROAD_HALF_WIDTH)))]
        cx0, cx1, cy0, cy1 = self.carpark
        drivable = [rect(x0, x1, -ROAD_HALF_WIDTH, ROAD_HALF_WIDTH),
                    rect(xc - CROSS_HALF_WIDTH, xc + CROSS_HALF_WIDTH, -CROSS_LENGTH, CROSS_LENGTH),
                    rect(cx0, cx1, cy0, cy1)]
        road_div = [np.array([[x0, 0.0], [xc - CROSS_HALF_WIDTH, 0.0]]),
                    np.array([[xc + CROSS_HALF_WIDTH, 0.0], [x1, 0.0]]),
                    np.array([[xc, ROAD_HALF_WIDTH], [xc, CROSS_LENGTH]]),
                    np.array([[xc, -CROSS_LENGTH], [xc, -ROAD_HALF_WIDTH]])]
        lane_div = []
        for y in (-LANE_WIDTH, LANE_WIDTH):
            lane_div += [np.array([[x0, y], [xc - CROSS_HALF_WIDTH, y]]),
                         np.array([[xc + CROSS_HALF_WIDTH, y], [x1, y]])]
        lanes, headings = [], []
        for k, y in enumerate((-2 * LANE_WIDTH, -LANE_WIDTH, 0.0, LANE_WIDTH)):
            lanes.append(rect(x0, x1, y, y + LANE_WIDTH))
            centre = y + LANE_WIDTH / 2
            headings.append(0.0 if centre * s > 0 else np.pi)
        return dict(drivable_area=drivable, walkway=walk, ped_crossing=crossings, stop_line=stop,
                    carpark_area=[rect(cx0, cx1, cy0, cy1)], road_divider=road_div,
                    lane_divider=lane_div, lane=lanes, lane_heading=headings)


def _rect(x0, x1, y0, y1) -> np.ndarray:
    """Counter-clockwise (4, 2) ring of an axis-aligned rectangle."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


class _StaticBuilder:
    """Collects static boxes given by their (x0, x1, y0, y1, z0, z1) extents."""

    def __init__(self):
        self.rows, self.material, self.color = [], [], []

    def add(self, x0, x1, y0, y1, z0, z1, material, color, yaw=0.0):
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        self.rows.append([(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2,
                          (x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2, yaw])
        self.material.append(MATERIAL_ID[material])
        self.color.append(color)

    def build(self):
        rows = torch.tensor(self.rows, dtype=torch.float32).reshape(-1, 7)
        boxes = BoxSet(rows[:, :3].contiguous(), rows[:, 3:6].contiguous(),
                       rows[:, 6].contiguous())
        return (boxes,
                np.asarray(self.material, dtype=np.int64), np.asarray(self.color, dtype=np.float64))


VEHICLE_COLORS = np.array([[0.85, 0.85, 0.85], [0.1, 0.1, 0.12], [0.55, 0.08, 0.08],
                           [0.1, 0.2, 0.5], [0.6, 0.6, 0.62], [0.9, 0.75, 0.1],
                           [0.2, 0.4, 0.25], [0.95, 0.95, 0.92]])


def _jitter_size(rng, category) -> Tuple[float, float, float]:
    w, l, h = CATEGORY_SIZE[category]
    f = rng.uniform(0.92, 1.08, size=3)
    return (w * f[0], l * f[1], h * f[2])


def build_scene_layout(rng: np.random.Generator, duration: float, drive_side: int,
                       origin_xy: Tuple[float, float], origin_yaw: float) -> SceneLayout:
    """Draw one scene.

    Args:
        rng (np.random.Generator): the scene's random stream.
        duration (float): scene length in seconds (>= 0).
        drive_side (int): -1 right-hand or +1 left-hand traffic.
        origin_xy (tuple): global xy of the scene origin, metres.
        origin_yaw (float): global yaw of the scene x axis, radians.

    Returns:
        SceneLayout: the scene.
    """
    if duration < 0 or drive_side not in (-1, 1):
        raise ValueError(f'build_scene_layout: need duration >= 0 and drive_side in (-1, 1), '
                         f'got {duration}, {drive_side}')
    s = drive_side
    v_ego = float(rng.uniform(5.0, 8.0))
    travel = v_ego * duration
    x_min, x_max = -travel / 2 - ROAD_MARGIN, travel / 2 + ROAD_MARGIN
    xc = 0.1 * travel + 22.0
    cp_x0 = -0.35 * travel - 14.0
    if cp_x0 + CARPARK_LENGTH > xc - 14.0:
        cp_x0 = xc - 14.0 - CARPARK_LENGTH - 4.0
    cp_x1 = cp_x0 + CARPARK_LENGTH
    cp_y = sorted((s * BUILDING_SETBACK, s * CARPARK_DEPTH))
    carpark = (cp_x0, cp_x1, cp_y[0], cp_y[1])

    static = _StaticBuilder()
    grey = [0.62, 0.62, 0.6]
    # sidewalks (raised slabs) along the main road and the side street
    for side in (-1, 1):
        for xa, xb in ((x_min, xc - CROSS_HALF_WIDTH), (xc + CROSS_HALF_WIDTH, x_max)):
            static.add(xa, xb, side * ROAD_HALF_WIDTH, side * SIDEWALK_OUTER, 0.0, SIDEWALK_HEIGHT,
                       'sidewalk', grey)
        for xa, xb in ((xc - CROSS_SIDEWALK_OUTER, xc - CROSS_HALF_WIDTH),
                       (xc + CROSS_HALF_WIDTH, xc + CROSS_SIDEWALK_OUTER)):
            static.add(xa, xb, side * SIDEWALK_OUTER, side * CROSS_LENGTH, 0.0, SIDEWALK_HEIGHT,
                       'sidewalk', grey)

    def building_color():
        base = rng.choice(np.array([[0.72, 0.62, 0.5], [0.55, 0.55, 0.58], [0.78, 0.74, 0.66],
                                    [0.6, 0.42, 0.35], [0.45, 0.5, 0.55], [0.82, 0.8, 0.75]]))
        return (base * rng.uniform(0.85, 1.1)).clip(0, 1).tolist()

    # buildings along the main road (no gap, except the side street and car park)
    for side in (-1, 1):
        blocked = [(xc - CROSS_SIDEWALK_OUTER - 0.3, xc + CROSS_SIDEWALK_OUTER + 0.3)]
        if side == s:
            blocked.append((cp_x0 - 0.3, cp_x1 + 0.3))
        x = x_min
        while x < x_max:
            hit = [b for b in blocked if b[0] <= x < b[1]]
            if hit:
                x = hit[0][1]
                continue
            width = float(rng.uniform(9.0, 22.0))
            end = min([x + width, x_max] + [b[0] for b in blocked if b[0] > x])
            depth, height = float(rng.uniform(12.0, 22.0)), float(rng.uniform(6.0, 32.0))
            static.add(x, end, side * BUILDING_SETBACK, side * (BUILDING_SETBACK + depth), 0.0,
                       height, 'building', building_color())
            x = end
    # buildings along the side street
    for side_x in (-1, 1):
        for side_y in (-1, 1):
            y = BUILDING_SETBACK
            while y < CROSS_LENGTH:
                width = float(rng.uniform(9.0, 22.0))
                end = min(y + width, CROSS_LENGTH)
                depth, height = float(rng.uniform(12.0, 22.0)), float(rng.uniform(6.0, 32.0))
                xa = xc + side_x * (CROSS_SIDEWALK_OUTER + 0.3)
                static.add(xa, xa + side_x * depth, side_y * y, side_y * end, 0.0, height,
                           'building', building_color())
                y = end
    # end walls closing the streets
    wall = [0.5, 0.48, 0.45]
    for xa in (x_min - 3.0, x_max + 1.0):
        static.add(xa, xa + 2.0, -SIDEWALK_OUTER - 2, SIDEWALK_OUTER + 2, 0.0, 12.0, 'building',
                   wall)
    for side in (-1, 1):
        static.add(xc - CROSS_SIDEWALK_OUTER, xc + CROSS_SIDEWALK_OUTER, side * (CROSS_LENGTH + 1),
                   side * (CROSS_LENGTH + 3), 0.0, 12.0, 'building', wall)
    # car-park walls (back and sides)
    far = s * CARPARK_DEPTH
    static.add(cp_x0 - 0.3, cp_x1 + 0.3, far, far + s * 0.3, 0.0, 2.2, 'wall', wall)
    static.add(cp_x0 - 0.3, cp_x0, s * BUILDING_SETBACK, far, 0.0, 2.2, 'wall', wall)
    static.add(cp_x1, cp_x1 + 0.3, s * BUILDING_SETBACK, far, 0.0, 2.2, 'wall', wall)
    # lamps and trees on the main-road sidewalks
    pole_xs = np.arange(np.ceil(x_min / 25.0) * 25.0, x_max, 25.0)
    for side in (-1, 1):
        for px in pole_xs:
            if abs(px - xc) > CROSS_SIDEWALK_OUTER + 1:
                static.add(px - 0.12, px + 0.12, side * 9.48, side * 9.72, 0.0, 7.0, 'pole',
                           [0.35, 0.36, 0.38])
            tx = px + 12.5
            if abs(tx - xc) > CROSS_SIDEWALK_OUTER + 2 and tx < x_max:
                static.add(tx - 0.18, tx + 0.18, side * 9.02, side * 9.38, 0.0, 2.6, 'trunk',
                           [0.35, 0.25, 0.15])
                static.add(tx - 1.2, tx + 1.2, side * 8.0, side * 10.4, 2.4, 4.6, 'crown',
                           [0.2, 0.45, 0.15])
    static_boxes, static_material, static_color = static.build()

    agents = Agents()

    def vehicle_color():
        return (VEHICLE_COLORS[rng.integers(len(VEHICLE_COLORS))] * rng.uniform(0.85, 1.0)).tolist()

    def fill_lane(y, heading, speed, gap_range, categories, probs, attribute, x_lo, x_hi):
        """Place agents along a lane line; same speed so they never collide."""
        x = x_lo + float(rng.uniform(0, gap_range[0]))
        while x < x_hi:
            cat = str(rng.choice(categories, p=probs))
            size = _jitter_size(rng, cat)
            is_cycle = cat in ('vehicle.bicycle', 'vehicle.motorcycle')
            attr = 'cycle.with_rider' if is_cycle else attribute
            agents.add(cat, attr, size, (x + size[1] / 2, y), heading, speed, vehicle_color())
            x += size[1] + float(rng.uniform(*gap_range))

    # same direction inner lane: faster traffic passing the ego
    v_in = v_ego + float(rng.uniform(2.0, 4.0))
    fill_lane(s * LANE_WIDTH / 2, 0.0, v_in, (14.0, 30.0),
              ['vehicle.car', 'vehicle.truck', 'vehicle.bus.rigid', 'vehicle.motorcycle'],
              [0.7, 0.12, 0.1, 0.08], 'vehicle.moving', x_min + 5, x_max - v_in * duration - 15)
    # opposite lanes: cars and buses inside, cycles and cars near the curb
    v_op = float(rng.uniform(6.0, 10.0))
    fill_lane(-s * LANE_WIDTH / 2, np.pi, v_op, (12.0, 28.0),
              ['vehicle.car', 'vehicle.truck', 'vehicle.bus.rigid'], [0.75, 0.13, 0.12],
              'vehicle.moving', x_min + v_op * duration + 5, x_max - 15)
    v_cy = float(rng.uniform(4.0, 5.0))
    fill_lane(-s * 1.6 * LANE_WIDTH, np.pi, v_cy, (10.0, 25.0),
              ['vehicle.bicycle', 'vehicle.motorcycle', 'vehicle.car'], [0.45, 0.25, 0.3],
              'vehicle.moving', x_min + v_cy * duration + 5, x_max - 15)
    # ego lane: a leading car at the ego's speed
    for offset in (18.0, 40.0):
        size = _jitter_size(rng, 'vehicle.car')
        agents.add('vehicle.car', 'vehicle.moving', size,
                   (-0.5 * travel + offset, s * 1.5 * LANE_WIDTH), 0.0, v_ego, vehicle_color())
    # side street: cars waiting to enter the main road
    for k in range(int(rng.integers(2, 4))):
        size = _jitter_size(rng, 'vehicle.car')
        agents.add('vehicle.car', 'vehicle.stopped', size,
                   (xc + s * LANE_WIDTH * 0.85, 12.5 + k * 7.0), -np.pi / 2, 0.0, vehicle_color())
    # construction zone on the other half of the side street
    zone_x = xc - s * LANE_WIDTH * 0.85
    agents.add('vehicle.construction', 'vehicle.parked', _jitter_size(rng, 'vehicle.construction'),
               (zone_x, -24.0), np.pi / 2, 0.0, [0.95, 0.65, 0.05])
    for bx in (-1.3, 1.3):
        agents.add('movable_object.barrier', '', _jitter_size(rng, 'movable_object.barrier'),
                   (zone_x + bx, -14.0), np.pi / 2, 0.0, [0.9, 0.9, 0.9])
    # the cone line starts at the intersection, so that some cones stand within
    # the devkit's 30 m traffic-cone evaluation range of the passing ego
    for y in np.arange(-8.2, -33.0, -2.6):
        agents.add('movable_object.trafficcone', '',
                   _jitter_size(rng, 'movable_object.trafficcone'),
                   (xc, float(y)), 0.0, 0.0, [1.0, 0.45, 0.05])
    # car park: two rows of perpendicular spots, a trailer and a truck in the aisle
    front, back = s * (BUILDING_SETBACK + 3.0), s * (CARPARK_DEPTH - 3.0)
    for row_y in (front, back):
        for spot_x in np.arange(cp_x0 + 1.6, cp_x1 - 1.4, 2.9):
            u = rng.uniform()
            if u < 0.6:
                agents.add('vehicle.car', 'vehicle.parked', _jitter_size(rng, 'vehicle.car'),
                           (float(spot_x), row_y), np.pi / 2, 0.0, vehicle_color())
            elif u < 0.75:
                agents.add('vehicle.motorcycle', 'cycle.without_rider',
                           _jitter_size(rng, 'vehicle.motorcycle'), (float(spot_x), row_y),
                           np.pi / 2, 0.0, vehicle_color())
    aisle = s * (BUILDING_SETBACK + CARPARK_DEPTH) / 2
    agents.add('vehicle.trailer', 'vehicle.parked', _jitter_size(rng, 'vehicle.trailer'),
               (cp_x0 + 8.5, aisle), 0.0, 0.0, [0.8, 0.8, 0.78])
    agents.add('vehicle.truck', 'vehicle.parked', _jitter_size(rng, 'vehicle.truck'),
               (cp_x0 + 24.0, aisle), 0.0, 0.0, vehicle_color())
    agents.add('movable_object.barrier', '', _jitter_size(rng, 'movable_object.barrier'),
               (cp_x1 - 2.0, aisle), 0.0, 0.0, [0.85, 0.1, 0.1])
    # pedestrians: two walking lines per sidewalk, standing people, parked bicycles
    for side in (-1, 1):
        for line_y, heading in ((7.5, 0.0), (8.3, np.pi)):
            speed = float(rng.uniform(1.1, 1.5))
            x = x_min + float(rng.uniform(0, 6))
            while x < x_max:
                agents.add('human.pedestrian.adult', 'pedestrian.moving',
                           _jitter_size(rng, 'human.pedestrian.adult'), (x, side * line_y), heading,
                           speed, rng.uniform(0.1, 0.9, size=3).tolist(), on_sidewalk=True)
                x += float(rng.uniform(8.0, 30.0))
        for px in pole_xs:
            if abs(px + 18.0 - xc) > CROSS_SIDEWALK_OUTER + 2 and rng.uniform() < 0.6:
                agents.add('human.pedestrian.adult', 'pedestrian.standing',
                           _jitter_size(rng, 'human.pedestrian.adult'), (px + 18.0, side * 9.2),
                           float(rng.uniform(-np.pi, np.pi)), 0.0,
                           rng.uniform(0.1, 0.9, size=3).tolist(), on_sidewalk=True)
            if abs(px + 6.0 - xc) > CROSS_SIDEWALK_OUTER + 2 and rng.uniform() < 0.5:
                agents.add('vehicle.bicycle', 'cycle.without_rider',
                           _jitter_size(rng, 'vehicle.bicycle'), (px + 6.0, side * 9.3), 0.0, 0.0,
                           vehicle_color(), on_sidewalk=True)
    agents.freeze()
    return SceneLayout(duration=duration, drive_side=s, origin_xy=tuple(origin_xy),
                       origin_yaw=origin_yaw, x_range=(x_min, x_max), cross_x=xc, carpark=carpark,
                       static_boxes=static_boxes, static_material=static_material,
                       static_color=static_color, agents=agents, ego_speed=v_ego,
                       ego_phase=float(rng.uniform(0, 2 * np.pi)))
