"""One picture per sample: camera images with projected LiDAR and 3D boxes.

The overview puts the cameras on a 2-row grid (front row FRONT_LEFT, FRONT,
FRONT_RIGHT; back row BACK_LEFT, BACK, BACK_RIGHT, others appended), with
every LiDAR point projected (``cam2img @ lidar2cam``) and coloured by depth
(turbo colour map, 0 m blue to ``max_depth`` red) and the edges of every 3D
box drawn in its class colour (front face white), plus a bird's-eye panel
(LiDAR frame, +y up, +x right, ±50 m) with the points coloured by height,
the box footprints, when given the BEV map labels, and a legend of the box
classes. Everything is rasterised with numpy on one canvas, without loops
over points, boxes or cameras; PIL only decodes and resizes images, writes
the text and the PNG.
"""
import logging
import pickle
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

GRID_ORDER = ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT',
              'CAM_BACK', 'CAM_BACK_RIGHT')

# (12, 2) corner-index pairs of box edges, for corners ordered by
# _BOX_CORNER_SIGNS (bottom face 0-3, top face 4-7).
_BOX_CORNER_SIGNS = np.array([[1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1],
                              [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]],
                             dtype=np.float64) / 2
_BOX_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7],
                       [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]])
_BOX_COLOUR = np.array([255, 40, 40], dtype=np.uint8)  # boxes without a class
_FRONT_EDGE_COLOUR = np.array([255, 255, 255], dtype=np.uint8)
#: Box colour of class label k: ``CLASS_COLOURS[k % 10]`` (matplotlib's tab10).
CLASS_COLOURS = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                          [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
                          [188, 189, 34], [23, 190, 207]], dtype=np.uint8)
_LEGEND_SWATCH = 10  # pixels
_MAP_COLOURS = np.array([[90, 90, 90], [200, 120, 200], [60, 140, 60],
                         [220, 60, 60], [70, 110, 170], [240, 240, 240]],
                        dtype=np.uint8)


def box_class_colours(labels: Optional[np.ndarray], num_boxes: int) -> np.ndarray:
    """(M, 3) uint8 box colours: ``CLASS_COLOURS[label % 10]``, red without a label (< 0)."""
    if labels is None:
        return np.broadcast_to(_BOX_COLOUR, (num_boxes, 3)).copy()
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != num_boxes:
        raise ValueError(f'{len(labels)} labels for {num_boxes} boxes')
    return np.where((labels >= 0)[:, None], CLASS_COLOURS[labels % len(CLASS_COLOURS)],
                    _BOX_COLOUR)


def legend_entries(labels: Optional[np.ndarray],
                   class_names: Optional[Sequence[str]]) -> list:
    """(name, (3,) uint8 colour) of each class present in ``labels``, by label.

    Names come from ``class_names[label]`` (``class <label>`` without them);
    boxes without a class (label < 0) are listed as ``no class`` in red.
    """
    if labels is None or len(labels) == 0:
        return []
    entries = []
    for label in sorted(set(int(x) for x in np.asarray(labels).reshape(-1))):
        if label < 0:
            entries.append(('no class', _BOX_COLOUR))
            continue
        name = (class_names[label] if class_names is not None and label < len(class_names)
                else f'class {label}')
        entries.append((name, CLASS_COLOURS[label % len(CLASS_COLOURS)]))
    return entries


def lidar_box_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners of mmdet3d LiDAR boxes.

    Args:
        boxes (np.ndarray): (M, >=7) boxes ``[x, y, z, l, w, h, yaw]`` with
            (x, y, z) the gravity centre in metres, LiDAR frame (info layout).

    Returns:
        np.ndarray: (M, 8, 3) corners in metres, bottom face first; corners
        0, 1, 4, 5 are on the front (+l) face.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    cos, sin = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    rot = np.stack([np.stack([cos, -sin, np.zeros_like(cos)], -1),
                    np.stack([sin, cos, np.zeros_like(cos)], -1),
                    np.tile([0.0, 0.0, 1.0], (len(boxes), 1))], 1)
    local = _BOX_CORNER_SIGNS[None] * boxes[:, None, 3:6]
    return np.einsum('mij,mkj->mki', rot, local) + boxes[:, None, :3]


def depth_colours(values: np.ndarray, vmax: float) -> np.ndarray:
    """Turbo colours of values in [0, vmax]: (N,) -> (N, 3) uint8."""
    from matplotlib import colormaps
    rgba = colormaps['turbo'](np.clip(values / vmax, 0.0, 1.0))
    return (rgba[:, :3] * 255).astype(np.uint8)


def _splat(canvas: np.ndarray, uv: np.ndarray, colours: np.ndarray,
           radius: int) -> None:
    """Write (N, 2) integer canvas pixels (u, v) as squares of side 2r+1."""
    offsets = np.arange(-radius, radius + 1)
    du, dv = np.meshgrid(offsets, offsets)
    u = (uv[:, None, 0] + du.reshape(1, -1)).reshape(-1)
    v = (uv[:, None, 1] + dv.reshape(1, -1)).reshape(-1)
    col = np.repeat(colours, du.size, axis=0)
    ok = (u >= 0) & (u < canvas.shape[1]) & (v >= 0) & (v < canvas.shape[0])
    canvas[v[ok], u[ok]] = col[ok]


def grid_layout(cameras: Sequence[str], panel_w: int, panel_h: int) -> np.ndarray:
    """Top-left canvas pixel (u, v) of each camera panel: (N_cam, 2) int."""
    known = [c for c in GRID_ORDER if c in cameras]
    order = known + [c for c in cameras if c not in known]
    cols = max(1, int(np.ceil(len(order) / 2)))
    slot = np.array([order.index(c) for c in cameras])
    return np.stack([(slot % cols) * panel_w, (slot // cols) * panel_h], 1)


def compose_sample_overview(images: Sequence[np.ndarray], cameras: Sequence[str],
                            lidar2cam: np.ndarray, cam2img: np.ndarray,
                            points: np.ndarray, boxes: np.ndarray,
                            map_seg: Optional[np.ndarray] = None,
                            panel_width: int = 400, max_depth: float = 60.0,
                            bev_range: float = 50.0,
                            edge_samples: int = 256,
                            labels: Optional[np.ndarray] = None,
                            class_names: Optional[Sequence[str]] = None) -> np.ndarray:
    """Rasterise the overview of one sample.

    Args:
        images (Sequence[np.ndarray]): N_cam RGB images, (H_i, W_i, 3) uint8.
        cameras (Sequence[str]): N_cam channel names.
        lidar2cam (np.ndarray): (N_cam, 4, 4) LiDAR -> camera transforms.
        cam2img (np.ndarray): (N_cam, 3, 3) intrinsics (camera -> pixels at
            the original image size).
        points (np.ndarray): (N, >=3) LiDAR points, metres, LiDAR frame.
        boxes (np.ndarray): (M, >=7) boxes ``[x, y, z, l, w, h, yaw]``,
            gravity centre, LiDAR frame.
        map_seg (np.ndarray, optional): (C, X, Y) bool BEV labels indexed
            ``[class, ix, iy]`` over ``[-bev_range, bev_range)``.
        panel_width (int): width of each camera panel in pixels.
        max_depth (float): depth (metres) mapped to the end of the colour map.
        bev_range (float): half side of the BEV panel in metres.
        edge_samples (int): samples drawn along each box edge.
        labels (np.ndarray, optional): (M,) class label of each box; box k
            is drawn in ``CLASS_COLOURS[labels[k] % 10]`` (front face edges
            white) and the BEV panel gets a legend of the classes present
            (:func:`legend_entries`; swatches 10 px, 14 px apart, from 16 px
            below the panel's top, 4 px from its left). Without labels (or label < 0) boxes are
            red.
        class_names (Sequence[str], optional): names of the labels, for the
            legend.

    Returns:
        np.ndarray: (H, W, 3) uint8 overview image.
    """
    n_cam = len(images)
    sizes = np.array([[img.shape[1], img.shape[0]] for img in images], dtype=np.float64)
    panel_h = int(round(panel_width * sizes[0, 1] / sizes[0, 0]))
    scale = np.array([panel_width, panel_h]) / sizes  # (N_cam, 2)
    origins = grid_layout(cameras, panel_width, panel_h)
    grid_w = int(origins[:, 0].max()) + panel_width
    grid_h = int(origins[:, 1].max()) + panel_h
    bev_px = grid_h
    canvas = np.zeros((grid_h, grid_w + bev_px, 3), dtype=np.uint8)
    resized = np.stack([
        np.asarray(Image.fromarray(img).resize((panel_width, panel_h), Image.BILINEAR))
        for img in images])
    rows = origins[:, 1, None] + np.arange(panel_h)[None]  # (N_cam, ph)
    cols = origins[:, 0, None] + np.arange(panel_width)[None]  # (N_cam, pw)
    canvas[rows[:, :, None], cols[:, None, :]] = resized

    def project(xyz: np.ndarray):
        """(P, 3) LiDAR -> per camera canvas pixels (N_cam, P, 2), depth, ok."""
        hom = np.concatenate([xyz, np.ones((len(xyz), 1))], 1)
        cam = np.einsum('cij,pj->cpi', lidar2cam, hom)[..., :3]
        depth = cam[..., 2]
        pix = np.einsum('cij,cpj->cpi', cam2img, cam)
        uv = pix[..., :2] / np.maximum(pix[..., 2:3], 1e-6) * scale[:, None, :]
        ok = (depth > 0.1) & np.all((uv >= 0) & (uv < [panel_width, panel_h]), -1)
        return (uv + origins[:, None, :]).astype(np.int64), depth, ok

    xyz = np.asarray(points, dtype=np.float64)[:, :3]
    uv, depth, ok = project(xyz)
    order = np.argsort(-depth[ok])  # far first, near points drawn on top
    _splat(canvas, uv[ok][order], depth_colours(depth[ok][order], max_depth), 0)

    boxes = np.asarray(boxes, dtype=np.float64)
    corners = lidar_box_corners(boxes)  # (M, 8, 3)
    ends = corners[:, _BOX_EDGES]  # (M, 12, 2, 3)
    t = np.linspace(0.0, 1.0, edge_samples)[None, None, :, None]
    samples = ends[:, :, None, 0] * (1 - t) + ends[:, :, None, 1] * t  # (M, 12, S, 3)
    box_colours = box_class_colours(labels, len(boxes))  # (M, 3)
    colour = np.broadcast_to(box_colours[:, None, None], samples.shape[:3] + (3,)).copy()
    colour[:, [0, 8, 9]] = _FRONT_EDGE_COLOUR  # front face edges
    uv_b, _, ok_b = project(samples.reshape(-1, 3))
    col_b = np.broadcast_to(colour.reshape(-1, 3)[None], ok_b.shape + (3,))
    _splat(canvas, uv_b[ok_b], col_b[ok_b], 1)

    bev = canvas[:, grid_w:]
    cell = 2 * bev_range / bev_px

    def to_bev(xy: np.ndarray):
        u = np.floor((xy[:, 0] + bev_range) / cell).astype(np.int64)
        v = np.floor((bev_range - xy[:, 1]) / cell).astype(np.int64)
        return np.stack([u, v], 1)

    if map_seg is not None:
        cls_x, cls_y = map_seg.shape[1:]
        grid = np.mgrid[0:bev_px, 0:bev_px]  # v, u
        ix = ((grid[1] + 0.5) * cell / (2 * bev_range) * cls_x).astype(np.int64)
        iy = ((bev_px - grid[0] - 0.5) * cell / (2 * bev_range) * cls_y).astype(np.int64)
        present = map_seg[:, ix, iy]  # (C, bev_px, bev_px)
        top = np.where(present.any(0), present.shape[0] - 1 - np.argmax(present[::-1], 0), -1)
        bev[top >= 0] = _MAP_COLOURS[top[top >= 0] % len(_MAP_COLOURS)] // 2
    heights = depth_colours(xyz[:, 2] + 3.0, 6.0)
    _splat(bev, to_bev(xyz[:, :2]), heights, 0)
    footprint = samples[:, :4].reshape(-1, 3)  # bottom-face edges
    _splat(bev, to_bev(footprint[:, :2]),
           np.broadcast_to(box_colours[:, None, None], samples[:, :4].shape).reshape(-1, 3)
           .copy(), 0)
    _splat(bev, to_bev(np.zeros((1, 2))), np.array([[255, 255, 255]], np.uint8), 2)

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for name, (u, v) in zip(cameras, origins.tolist()):
        draw.text((u + 4, v + 2), name, fill=(255, 255, 255))
    draw.text((grid_w + 4, 2), 'BEV (LiDAR frame, +y up)', fill=(255, 255, 255))
    # legend: one swatch + name per class, top-down below the title, in as many
    # columns (half the panel wide) as the panel height needs
    step = _LEGEND_SWATCH + 4
    per_column = max(1, (grid_h - 16) // step)
    for i, (name, rgb) in enumerate(legend_entries(labels, class_names)):
        left = grid_w + 4 + (i // per_column) * (bev_px // 2)
        top = 16 + (i % per_column) * step
        draw.rectangle([left, top, left + _LEGEND_SWATCH - 1, top + _LEGEND_SWATCH - 1],
                       fill=tuple(int(c) for c in rgb))
        draw.text((left + _LEGEND_SWATCH + 4, top - 1), name, fill=(255, 255, 255))
    logger.debug('overview of %d cameras, %d points, %d boxes', n_cam, len(xyz), len(boxes))
    return np.asarray(image)


def resolve_paths(info: Dict, data_root: Path, flat: bool = False,
                  info_dir: Optional[Path] = None) -> Dict:
    """Absolute file paths of an info's LiDAR, images and map label.

    Args:
        info (dict): one data_list entry.
        data_root (Path): dataset root.
        flat (bool): all files lie directly in ``data_root`` (data_prefix
            ``''`` everywhere) instead of the nuScenes layout
            (``samples/<CHANNEL>/<file>``).
        info_dir (Path, optional): folder of the info file, base of
            ``map_seg_path``.

    Returns:
        dict: ``lidar`` (Path), ``images`` ({cam: Path}), ``map_seg`` (Path or
        None).
    """
    data_root = Path(data_root)

    def prefix(channel: str) -> Path:
        return data_root if flat else data_root / 'samples' / channel

    map_seg = None
    if 'map_seg_path' in info and info_dir is not None:
        map_seg = Path(info_dir) / info['map_seg_path']
    return dict(
        lidar=prefix('LIDAR_TOP') / info['lidar_points']['lidar_path'],
        images={cam: prefix(cam) / img['img_path'] for cam, img in info['images'].items()},
        map_seg=map_seg)


def load_sample_overview(info_path: Path, data_root: Path, index: int = 0,
                         flat: bool = False, panel_width: int = 400,
                         min_lidar_points: int = 1) -> np.ndarray:
    """Read one sample of an info file and compose its overview.

    Args:
        info_path (Path): mmdet3d 1.x info pkl.
        data_root (Path): dataset root.
        index (int): data_list index.
        flat (bool): flat folder layout (see :func:`resolve_paths`).
        panel_width (int): camera panel width in pixels.
        min_lidar_points (int): draw only boxes with at least this many
            LiDAR points (``num_lidar_pts``; 0 draws occluded boxes too).

    Returns:
        np.ndarray: (H, W, 3) uint8 overview.
    """
    with open(info_path, 'rb') as f:
        content = pickle.load(f)
    data_list = content['data_list']
    if not 0 <= index < len(data_list):
        raise IndexError(f'{info_path} has {len(data_list)} samples, '
                         f'index {index} is out of range')
    info = data_list[index]
    paths = resolve_paths(info, data_root, flat, Path(info_path).parent)
    num_feats = info['lidar_points'].get('num_pts_feats', 5)
    raw = np.fromfile(paths['lidar'], dtype=np.float32)
    if raw.size % num_feats:
        raise ValueError(f'LiDAR file {paths["lidar"]} has {raw.size} floats, '
                         f'not a multiple of {num_feats}')
    cameras = list(info['images'])
    images = [np.asarray(Image.open(paths['images'][c]).convert('RGB')) for c in cameras]
    categories = content.get('metainfo', {}).get('categories', {})
    class_names = [None] * (max(categories.values(), default=-1) + 1)
    for name, label in categories.items():
        if label >= 0:
            class_names[label] = name
    kept = [inst for inst in info.get('instances', [])
            if inst.get('num_lidar_pts', 0) >= min_lidar_points]
    boxes = np.array([inst['bbox_3d'] for inst in kept], dtype=np.float64).reshape(-1, 7)
    labels = np.array([inst.get('bbox_label_3d', -1) for inst in kept], dtype=np.int64)
    map_seg = None
    if paths['map_seg'] is not None:
        with np.load(paths['map_seg']) as data:
            map_seg = data['map_seg']
    return compose_sample_overview(
        images, cameras,
        np.array([info['images'][c]['lidar2cam'] for c in cameras], dtype=np.float64),
        np.array([info['images'][c]['cam2img'] for c in cameras], dtype=np.float64),
        raw.reshape(-1, num_feats), boxes, map_seg, panel_width, labels=labels,
        class_names=class_names)


def save_overview_png(image: np.ndarray, path: Path, colours: int = 0) -> Path:
    """Write an overview as PNG, optionally palette-quantised to shrink it.

    Args:
        image (np.ndarray): (H, W, 3) uint8.
        path (Path): output file.
        colours (int): if > 0, quantise to this many palette colours.

    Returns:
        Path: the written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(image)
    if colours > 0:
        pil = pil.quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    pil.save(path, optimize=True)
    return path
