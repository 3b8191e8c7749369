"""nuScenes map files of the synthetic world.

Two products per location, both in the global frame (metres):

* ``maps/<token>.png``: the ``semantic_prior`` mask of the ``map`` table
  (drivable area = 255) at 0.1 m per pixel, origin at the image's bottom
  left, as ``nuscenes.utils.map_mask.MapMask`` expects.
* ``maps/expansion/<location>.json``: the map-expansion format (version
  1.3) read by ``nuscenes.map_expansion.map_api.NuScenesMap``: geometric
  layers (node, line, polygon) and the semantic layers drivable_area,
  road_segment, road_block, lane, ped_crossing, walkway, stop_line,
  carpark_area, road_divider, lane_divider, traffic_light, lane_connector,
  plus arcline_path_3 and connectivity for the lanes.
"""
import json
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .nuscenes_tables import TokenFactory
from .scene_layout import SceneLayout

MAP_RESOLUTION = 0.1
MAP_VERSION = '1.3'
POLYGON_LAYERS = ('walkway', 'ped_crossing', 'stop_line', 'carpark_area')


class _MapBuilder:
    """Accumulates map-expansion records with deterministic tokens."""

    def __init__(self, tokens: TokenFactory, location: str):
        self.tokens = tokens
        self.location = location
        self.count = 0
        self.layers = {name: [] for name in (
            'node', 'line', 'polygon', 'drivable_area', 'road_segment', 'road_block', 'lane',
            'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'road_divider', 'lane_divider',
            'traffic_light', 'lane_connector')}
        self.arcline_path_3 = {}
        self.connectivity = {}

    def token(self, kind: str) -> str:
        self.count += 1
        return self.tokens('map-expansion', self.location, kind, self.count)

    def nodes(self, points: np.ndarray) -> List[str]:
        out = []
        for x, y in np.asarray(points, dtype=np.float64):
            tok = self.token('node')
            self.layers['node'].append(dict(token=tok, x=round(float(x), 4), y=round(float(y), 4)))
            out.append(tok)
        return out

    def polygon(self, ring: np.ndarray) -> str:
        tok = self.token('polygon')
        self.layers['polygon'].append(dict(token=tok, exterior_node_tokens=self.nodes(ring),
                                           holes=[]))
        return tok

    def line(self, points: np.ndarray) -> Tuple[str, List[str]]:
        tok = self.token('line')
        node_tokens = self.nodes(points)
        self.layers['line'].append(dict(token=tok, node_tokens=node_tokens))
        return tok, node_tokens

    def add_scene(self, layout: SceneLayout) -> None:
        """Add one scene's road network, converted to the global frame."""
        shapes = layout.map_shapes()
        glob = layout.scene_to_global
        drivable_tok = self.token('drivable_area')
        self.layers['drivable_area'].append(dict(
            token=drivable_tok,
            polygon_tokens=[self.polygon(glob(r)) for r in shapes['drivable_area']]))
        segment_tok = self.token('road_segment')
        self.layers['road_segment'].append(dict(
            token=segment_tok, polygon_token=self.polygon(glob(shapes['drivable_area'][0])),
            is_intersection=False, drivable_area_token=drivable_tok))
        block_tokens = []
        for lane_ring, heading in zip(shapes['lane'], shapes['lane_heading']):
            ring = glob(lane_ring)
            x0, x1 = lane_ring[0, 0], lane_ring[1, 0]
            yc = (lane_ring[0, 1] + lane_ring[2, 1]) / 2
            ends = np.array([[x0, yc], [x1, yc]] if heading == 0 else [[x1, yc], [x0, yc]])
            ends_g = glob(ends)
            yaw = float(np.arctan2(ends_g[1, 1] - ends_g[0, 1], ends_g[1, 0] - ends_g[0, 0]))
            half = np.abs(lane_ring[2, 1] - lane_ring[0, 1]) / 2
            normal = np.array([[0.0, -half], [0.0, half]])
            from_edge, _ = self.line(glob(ends[0] + normal))
            to_edge, _ = self.line(glob(ends[1] + normal))
            block_tok = self.token('road_block')
            block_tokens.append(block_tok)
            self.layers['road_block'].append(dict(
                token=block_tok, polygon_token=self.polygon(ring), from_edge_line_token=from_edge,
                to_edge_line_token=to_edge, road_segment_token=segment_tok))
            lane_tok = self.token('lane')
            self.layers['lane'].append(dict(
                token=lane_tok, polygon_token=self.polygon(ring), lane_type='CAR',
                from_edge_line_token=from_edge, to_edge_line_token=to_edge,
                left_lane_divider_segments=[], right_lane_divider_segments=[]))
            length = float(np.hypot(*(ends_g[1] - ends_g[0])))
            self.arcline_path_3[lane_tok] = [dict(
                start_pose=[float(ends_g[0, 0]), float(ends_g[0, 1]), yaw],
                end_pose=[float(ends_g[1, 0]), float(ends_g[1, 1]), yaw], shape='LSL',
                radius_of_curvature=999.0, segment_length=[0.0, length, 0.0])]
            self.connectivity[lane_tok] = dict(incoming=[], outgoing=[])
        crossing_tokens = []
        for ring in shapes['ped_crossing']:
            tok = self.token('ped_crossing')
            crossing_tokens.append(tok)
            self.layers['ped_crossing'].append(dict(
                token=tok, polygon_token=self.polygon(glob(ring)), road_segment_token=segment_tok))
        for ring in shapes['walkway']:
            self.layers['walkway'].append(dict(token=self.token('walkway'),
                                               polygon_token=self.polygon(glob(ring))))
        for k, ring in enumerate(shapes['stop_line']):
            self.layers['stop_line'].append(dict(
                token=self.token('stop_line'), polygon_token=self.polygon(glob(ring)),
                stop_line_type='PED_CROSSING', ped_crossing_tokens=[crossing_tokens[k]],
                traffic_light_tokens=[], road_block_token=block_tokens[k]))
        for ring in shapes['carpark_area']:
            self.layers['carpark_area'].append(dict(
                token=self.token('carpark_area'), polygon_token=self.polygon(glob(ring)),
                orientation=float(layout.origin_yaw), road_block_token=''))
        for points in shapes['road_divider']:
            line_tok, _ = self.line(glob(points))
            self.layers['road_divider'].append(dict(token=self.token('road_divider'),
                                                    line_token=line_tok,
                                                    road_segment_token=segment_tok))
        for points in shapes['lane_divider']:
            line_tok, node_tokens = self.line(glob(points))
            self.layers['lane_divider'].append(dict(
                token=self.token('lane_divider'), line_token=line_tok,
                lane_divider_segments=[dict(node_token=n, segment_type='DOUBLE_DASHED_WHITE')
                                       for n in node_tokens]))

    def to_json(self, canvas_edge: Tuple[float, float]) -> dict:
        out = dict(version=MAP_VERSION, canvas_edge=[float(canvas_edge[0]), float(canvas_edge[1])],
                   arcline_path_3=self.arcline_path_3, connectivity=self.connectivity)
        out.update(self.layers)
        return out


def write_location_maps(dataroot: Path, location: str, map_token: str,
                        layouts: Sequence[SceneLayout], canvas_edge: Tuple[float, float],
                        tokens: TokenFactory) -> str:
    """Write the semantic-prior PNG and the map-expansion JSON of one location.

    Args:
        dataroot (Path): dataset root.
        location (str): nuScenes location name (file stem of the JSON).
        map_token (str): token of the ``map`` record (file stem of the PNG).
        layouts (Sequence[SceneLayout]): scenes at that location.
        canvas_edge (tuple): (width, height) of the location in metres; all
            scene geometry must lie in [0, width] x [0, height].
        tokens (TokenFactory): token source.

    Returns:
        str: the PNG path relative to ``dataroot`` (``maps/<token>.png``).
    """
    builder = _MapBuilder(tokens, location)
    for layout in layouts:
        builder.add_scene(layout)
    expansion = dataroot / 'maps' / 'expansion'
    expansion.mkdir(parents=True, exist_ok=True)
    with open(expansion / f'{location}.json', 'w') as f:
        json.dump(builder.to_json(canvas_edge), f, sort_keys=True)
    width = int(np.ceil(canvas_edge[0] / MAP_RESOLUTION))
    height = int(np.ceil(canvas_edge[1] / MAP_RESOLUTION))
    mask = Image.new('L', (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for layout in layouts:
        for ring in layout.map_shapes()['drivable_area']:
            g = layout.scene_to_global(ring)
            pixels = [(float(x / MAP_RESOLUTION), float(height - y / MAP_RESOLUTION)) for x, y in g]
            draw.polygon(pixels, fill=255)
    rel = f'maps/{map_token}.png'
    mask.save(dataroot / rel, format='PNG', optimize=False, compress_level=6)
    return rel
