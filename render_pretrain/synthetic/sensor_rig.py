"""The synthetic vehicle's sensor rig: six cameras and a 32-beam top LiDAR.

Numbers are rounded versions of a real nuScenes calibration (Renault Zoe
rig): camera mounting positions in the ego frame (x forward, y left, z up,
metres), yaw of each optical axis, and focal lengths for 1600x900 images.
Frames:
    * ego: x forward, y left, z up (metres), origin on the ground under the
      rear axle.
    * camera: x right, y down, z forward (OpenCV), pixel centres at integer
      image coordinates.
    * lidar: as nuScenes' LIDAR_TOP, x right, y forward, z up.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np


@dataclass(frozen=True)
class CameraMount:
    """One camera of the rig.

    Attributes:
        channel (str): nuScenes channel name (``CAM_FRONT`` ...).
        translation (tuple): camera centre in the ego frame, metres.
        yaw_deg (float): direction of the optical axis in the ego xy plane,
            degrees, counter-clockwise from ego +x.
        focal_1600 (float): focal length in pixels at 1600 px image width.
    """

    channel: str
    translation: Tuple[float, float, float]
    yaw_deg: float
    focal_1600: float


CAMERA_MOUNTS = (
    CameraMount('CAM_FRONT', (1.70, 0.00, 1.51), 0.0, 1260.0),
    CameraMount('CAM_FRONT_RIGHT', (1.55, -0.49, 1.50), -55.0, 1260.0),
    CameraMount('CAM_FRONT_LEFT', (1.52, 0.49, 1.51), 55.0, 1260.0),
    CameraMount('CAM_BACK', (0.03, 0.00, 1.58), 180.0, 800.0),
    CameraMount('CAM_BACK_LEFT', (1.04, 0.49, 1.59), 110.0, 1260.0),
    CameraMount('CAM_BACK_RIGHT', (1.02, -0.48, 1.56), -110.0, 1260.0),
)
CAMERA_CHANNELS = tuple(m.channel for m in CAMERA_MOUNTS)
LIDAR_CHANNEL = 'LIDAR_TOP'
LIDAR_TRANSLATION = (0.94, 0.0, 1.84)
LIDAR_YAW_DEG = -90.0
LIDAR_NUM_BEAMS = 32
LIDAR_ELEVATION_RANGE_DEG = (-30.67, 10.67)
LIDAR_MAX_RANGE = 70.0


def rotation_z(yaw: float) -> np.ndarray:
    """(3, 3) float64 rotation about +z by ``yaw`` radians."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def quaternion_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), w >= 0, of a (3, 3) rotation matrix."""
    rot = np.asarray(rot, dtype=np.float64)
    if rot.shape != (3, 3):
        raise ValueError(f'quaternion_from_matrix expects a (3, 3) matrix, got {rot.shape}')
    trace = np.trace(rot)
    candidates = np.array([trace, rot[0, 0], rot[1, 1], rot[2, 2]])
    k = int(np.argmax(candidates))
    if k == 0:
        s = np.sqrt(1.0 + trace) * 2
        q = [0.25 * s, (rot[2, 1] - rot[1, 2]) / s, (rot[0, 2] - rot[2, 0]) / s,
             (rot[1, 0] - rot[0, 1]) / s]
    elif k == 1:
        s = np.sqrt(1.0 + rot[0, 0] - rot[1, 1] - rot[2, 2]) * 2
        q = [(rot[2, 1] - rot[1, 2]) / s, 0.25 * s, (rot[0, 1] + rot[1, 0]) / s,
             (rot[0, 2] + rot[2, 0]) / s]
    elif k == 2:
        s = np.sqrt(1.0 + rot[1, 1] - rot[0, 0] - rot[2, 2]) * 2
        q = [(rot[0, 2] - rot[2, 0]) / s, (rot[0, 1] + rot[1, 0]) / s, 0.25 * s,
             (rot[1, 2] + rot[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + rot[2, 2] - rot[0, 0] - rot[1, 1]) * 2
        q = [(rot[1, 0] - rot[0, 1]) / s, (rot[0, 2] + rot[2, 0]) / s,
             (rot[1, 2] + rot[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q = q / np.linalg.norm(q)
    return -q if q[0] < 0 else q


def yaw_quaternion(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation about +z by ``yaw`` radians."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def camera_to_ego_rotation(mount: CameraMount) -> np.ndarray:
    """(3, 3) rotation taking camera-frame vectors to the ego frame."""
    yaw = np.deg2rad(mount.yaw_deg)
    right = [np.sin(yaw), -np.cos(yaw), 0.0]
    down = [0.0, 0.0, -1.0]
    forward = [np.cos(yaw), np.sin(yaw), 0.0]
    return np.stack([right, down, forward], axis=1)


def lidar_to_ego_rotation() -> np.ndarray:
    """(3, 3) rotation taking lidar-frame vectors to the ego frame."""
    return rotation_z(np.deg2rad(LIDAR_YAW_DEG))


def camera_intrinsics(mount: CameraMount, image_size: Tuple[int, int]) -> np.ndarray:
    """(3, 3) pinhole intrinsics for an image of ``image_size`` = (W, H) pixels.

    The focal length scales with the width (square pixels); the principal
    point is the image centre, so a non-16:9 size keeps the horizontal field
    of view of the 1600x900 camera and crops or extends it vertically.
    """
    width, height = _check_image_size(image_size)
    focal = mount.focal_1600 * width / 1600.0
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def _check_image_size(image_size) -> Tuple[int, int]:
    if len(image_size) != 2 or min(int(s) for s in image_size) < 8:
        raise ValueError(f'image_size must be (W, H) with both >= 8 pixels, got {image_size}')
    return int(image_size[0]), int(image_size[1])


def lidar_beam_elevations() -> np.ndarray:
    """(32,) beam elevations in radians, ring 0 lowest (uniform spacing)."""
    lo, hi = LIDAR_ELEVATION_RANGE_DEG
    return np.deg2rad(np.linspace(lo, hi, LIDAR_NUM_BEAMS))


def calibration_records() -> Dict[str, dict]:
    """Sensor-to-ego calibration of every channel, nuScenes style.

    Returns:
        dict: channel -> dict(translation [3], rotation quaternion [w, x, y,
        z], modality 'camera' or 'lidar', mount (CameraMount or None)).
    """
    records = {}
    for mount in CAMERA_MOUNTS:
        records[mount.channel] = dict(
            translation=list(mount.translation),
            rotation=quaternion_from_matrix(camera_to_ego_rotation(mount)).tolist(),
            modality='camera', mount=mount)
    records[LIDAR_CHANNEL] = dict(
        translation=list(LIDAR_TRANSLATION),
        rotation=yaw_quaternion(np.deg2rad(LIDAR_YAW_DEG)).tolist(),
        modality='lidar', mount=None)
    return records
