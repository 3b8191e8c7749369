"""3D box annotations of a key frame, in the layout of mmdet3d 1.x infos.

``instances`` hold the boxes in the key frame's LiDAR frame
(``bbox_3d = [x, y, z, l, w, h, yaw]``: gravity centre in metres, sizes
along the box's x/y/z axes, yaw about +z in radians), their velocity
``[vx, vy]`` (m/s, LiDAR frame, NaN when the devkit has no neighbour
annotation), the mmdet3d class index (``-1`` for categories outside the
10 detection classes) and point counts. ``cam_instances`` hold, per camera,
the boxes whose projection meets the image, in that camera's frame
(``bbox_3d = [x, y, z, l, h, w, -yaw]``), with the 2D box of the projected
corners clipped to the image, the projected centre and its depth, and the
attribute index. Values follow mmdet3d's ``nuscenes_converter.py`` and
``update_infos_to_v2.py``; the image size comes from the ``sample_data``
record instead of being fixed to 1600x900.
"""
import logging
from typing import Any, Dict, List, Sequence, Set, Tuple

import numpy as np
from shapely.geometry import MultiPoint, Polygon, box as shapely_box

from .categories import CATEGORY_TO_CLASS, NUSCENES_ATTRIBUTES, NUSCENES_CLASSES
from .poses import (invert_rigid, quaternion_to_rotation_matrix,
                    record_to_matrix, yaw_from_rotation)
from .tables import get_record

logger = logging.getLogger(__name__)

VISIBILITIES = ('', '1', '2', '3', '4')

# Corner signs of a box in its own frame, devkit ``Box.corners`` order:
# (8, 3) multiples of (l/2, w/2, h/2).
_CORNER_SIGNS = np.array([[1, 1, 1], [1, -1, 1], [1, -1, -1], [1, 1, -1],
                          [-1, 1, 1], [-1, -1, 1], [-1, -1, -1], [-1, 1, -1]],
                         dtype=np.float64)


def annotation_poses(annotations: Sequence[Dict]) -> Tuple[np.ndarray, np.ndarray]:
    """Global box centres/rotations of annotation records.

    Args:
        annotations (Sequence[dict]): N ``sample_annotation`` records.

    Returns:
        tuple[np.ndarray, np.ndarray]: (N, 3) centres in metres and
        (N, 3, 3) rotations, both in the global frame.
    """
    if not annotations:
        return np.zeros((0, 3)), np.zeros((0, 3, 3))
    centers = np.array([a['translation'] for a in annotations], dtype=np.float64)
    rots = quaternion_to_rotation_matrix(
        np.array([a['rotation'] for a in annotations], dtype=np.float64))
    return centers, rots


def box_corners(centers: np.ndarray, sizes_wlh: np.ndarray,
                rots: np.ndarray) -> np.ndarray:
    """Corners of boxes, in the frame of ``centers`` and ``rots``.

    Args:
        centers (np.ndarray): (N, 3) box centres in metres.
        sizes_wlh (np.ndarray): (N, 3) width, length, height in metres.
        rots (np.ndarray): (N, 3, 3) box-to-frame rotations.

    Returns:
        np.ndarray: (N, 8, 3) corners, devkit ``Box.corners`` order.
    """
    half_lwh = sizes_wlh[:, [1, 0, 2]] / 2
    local = _CORNER_SIGNS[None] * half_lwh[:, None, :]
    return np.einsum('nij,nkj->nki', rots, local) + centers[:, None, :]


def velocity_global(nusc: Any, annotations: Sequence[Dict]) -> np.ndarray:
    """Devkit box velocities (central differences over neighbour annotations).

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        annotations (Sequence[dict]): N ``sample_annotation`` records.

    Returns:
        np.ndarray: (N, 3) velocity in m/s, global frame; NaN when undefined.
    """
    return np.array([nusc.box_velocity(a['token']) for a in annotations],
                    dtype=np.float64).reshape(-1, 3)


def build_lidar_instances(annotations: Sequence[Dict], global2lidar: np.ndarray,
                          velocities: np.ndarray,
                          ignored_names: Set[str]) -> List[Dict]:
    """The ``instances`` list of an info: boxes in the key frame's LiDAR frame.

    Args:
        annotations (Sequence[dict]): N ``sample_annotation`` records
            (``category_name`` resolved).
        global2lidar (np.ndarray): (4, 4) global -> key-frame LiDAR transform.
        velocities (np.ndarray): (N, 3) global velocities in m/s.
        ignored_names (set[str]): filled with the category names that are
            not detection classes (they get label ``-1``).

    Returns:
        list[dict]: per box ``bbox_label``, ``bbox_3d``, ``bbox_3d_isvalid``,
        ``bbox_label_3d``, ``num_lidar_pts``, ``num_radar_pts``, ``velocity``.
    """
    if not annotations:
        return []
    centers, rots = annotation_poses(annotations)
    rot = global2lidar[:3, :3]
    centers_lidar = centers @ rot.T + global2lidar[:3, 3]
    yaw = yaw_from_rotation(np.einsum('ij,njk->nik', rot, rots))
    sizes = np.array([a['size'] for a in annotations], dtype=np.float64)
    boxes = np.concatenate([centers_lidar, sizes[:, [1, 0, 2]], yaw[:, None]], 1)
    velo = (velocities @ rot.T)[:, :2]
    num_lidar = np.array([a['num_lidar_pts'] for a in annotations])
    num_radar = np.array([a['num_radar_pts'] for a in annotations])
    valid = (num_lidar + num_radar) > 0
    instances = []
    for i, ann in enumerate(annotations):
        name = CATEGORY_TO_CLASS.get(ann['category_name'], ann['category_name'])
        if name in NUSCENES_CLASSES:
            label = NUSCENES_CLASSES.index(name)
        else:
            ignored_names.add(name)
            label = -1
        instances.append(dict(
            bbox_label=label,
            bbox_3d=boxes[i].tolist(),
            bbox_3d_isvalid=valid[i],
            bbox_label_3d=label,
            num_lidar_pts=num_lidar[i],
            num_radar_pts=num_radar[i],
            velocity=velo[i].tolist()))
    return instances


def clip_polygon_to_image(corners_uv: np.ndarray, width: int,
                          height: int) -> Tuple[float, float, float, float]:
    """2D box of the convex hull of projected corners, clipped to the image.

    Args:
        corners_uv (np.ndarray): (K, 2) projected corners in pixels.
        width (int): image width in pixels.
        height (int): image height in pixels.

    Returns:
        tuple or None: (x1, y1, x2, y2) in pixels, or None when the hull does
        not overlap the image in a polygon.
    """
    hull = MultiPoint(corners_uv.tolist()).convex_hull
    canvas = shapely_box(0, 0, width, height)
    if not hull.intersects(canvas):
        return None
    inter = hull.intersection(canvas)
    if not isinstance(inter, Polygon):
        return None
    coords = np.array(inter.exterior.coords)
    return (min(coords[:, 0]), min(coords[:, 1]), max(coords[:, 0]),
            max(coords[:, 1]))


def build_camera_instances(nusc: Any, cam_sd: Dict, annotations: Sequence[Dict],
                           velocities: np.ndarray) -> List[Dict]:
    """``cam_instances[cam]``: boxes visible in one key-frame camera image.

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        cam_sd (dict): the camera's key-frame ``sample_data`` record.
        annotations (Sequence[dict]): N ``sample_annotation`` records.
        velocities (np.ndarray): (N, 3) global velocities in m/s.

    Returns:
        list[dict]: per visible box ``bbox_label``, ``bbox_label_3d``,
        ``bbox`` (x1, y1, x2, y2 pixels), ``bbox_3d_isvalid``, ``bbox_3d``
        (camera frame), ``velocity`` (vx, vz camera frame), ``center_2d``
        (pixels), ``depth`` (metres), ``attr_label``.
    """
    keep = [i for i, a in enumerate(annotations)
            if a['visibility_token'] in VISIBILITIES
            and a['category_name'] in CATEGORY_TO_CLASS]
    if not keep:
        return []
    token = cam_sd['token']
    cs = get_record(nusc, 'calibrated_sensor', cam_sd['calibrated_sensor_token'],
                    f'sample_data {token} calibrated_sensor_token')
    pose = get_record(nusc, 'ego_pose', cam_sd['ego_pose_token'],
                      f'sample_data {token} ego_pose_token')
    cam2img = np.array(cs['camera_intrinsic'], dtype=np.float64)
    global2cam = invert_rigid(record_to_matrix(pose) @ record_to_matrix(cs))
    anns = [annotations[i] for i in keep]
    centers, rots = annotation_poses(anns)
    rot = global2cam[:3, :3]
    centers_cam = centers @ rot.T + global2cam[:3, 3]
    rots_cam = np.einsum('ij,njk->nik', rot, rots)
    sizes = np.array([a['size'] for a in anns], dtype=np.float64)
    corners = box_corners(centers_cam, sizes, rots_cam)
    yaw = yaw_from_rotation(rots_cam)
    velo_cam = velocities[keep] @ rot.T
    centers_img = centers_cam @ cam2img.T
    width, height = cam_sd['width'], cam_sd['height']
    front = corners[..., 2] > 0  # (N, 8)
    uvw = corners @ cam2img.T
    uv = uvw[..., :2] / np.where(front, uvw[..., 2], 1.0)[..., None]  # (N, 8, 2)
    inside = np.all(front[..., None] & (uv >= 0) & (uv <= [width, height]), axis=(1, 2))
    big = np.where(front[..., None], uv, np.inf)
    small = np.where(front[..., None], uv, -np.inf)
    outside = (~front.any(1) | np.any(big.min(1) >= [width, height], 1)
               | np.any(small.max(1) <= 0, 1))
    records = []
    for i, ann in enumerate(anns):
        if outside[i]:  # the hull cannot overlap the image in a polygon
            continue
        if inside[i]:  # the hull lies in the image: no clipping needed
            clipped = (np.min(uv[i, :, 0]), np.min(uv[i, :, 1]),
                       np.max(uv[i, :, 0]), np.max(uv[i, :, 1]))
        else:
            clipped = clip_polygon_to_image(uv[i][front[i]], width, height)
        depth = float(centers_img[i, 2])
        if clipped is None or depth <= 0:
            continue
        label = NUSCENES_CLASSES.index(CATEGORY_TO_CLASS[ann['category_name']])
        attr_name = 'None'
        if ann['attribute_tokens']:
            attr_name = get_record(
                nusc, 'attribute', ann['attribute_tokens'][0],
                f"sample_annotation {ann['token']} attribute_tokens")['name']
        w, l, h = sizes[i]
        records.append(dict(
            bbox_label=label,
            bbox_label_3d=label,
            bbox=list(clipped),
            bbox_3d_isvalid=True,
            bbox_3d=centers_cam[i].tolist() + [float(l), float(h), float(w),
                                               np.float64(-yaw[i])],
            velocity=velo_cam[i, 0::2].tolist(),
            center_2d=(centers_img[i, :2] / centers_img[i, 2]).tolist(),
            depth=depth,
            attr_label=NUSCENES_ATTRIBUTES.index(attr_name)))
    return records
