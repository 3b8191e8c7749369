"""Rigid transforms between nuScenes frames, built from the devkit tables.

nuScenes stores every pose as a unit quaternion ``rotation`` (w, x, y, z) and
a ``translation`` (metres). This module turns such records into 4x4
homogeneous matrices ``A2B`` that map column vectors from frame A to frame B
(``p_B = A2B @ p_A``), the convention of mmdet3d's info keys
(``lidar2ego``, ``ego2global``, ``cam2ego``, ``lidar2cam``).
"""
from typing import Mapping, Sequence

import numpy as np


def quaternion_to_rotation_matrix(quaternions: np.ndarray) -> np.ndarray:
    """Convert unit quaternions to rotation matrices.

    Args:
        quaternions (np.ndarray): (..., 4) quaternions ordered (w, x, y, z), as
            in the nuScenes tables. They are normalised here.

    Returns:
        np.ndarray: (..., 3, 3) float64 rotation matrices.
    """
    q = np.asarray(quaternions, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rot = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    return rot.reshape(q.shape[:-1] + (3, 3))


def pose_to_matrix(rotation: Sequence[float],
                   translation: Sequence[float]) -> np.ndarray:
    """Build a 4x4 rigid transform from a quaternion and a translation.

    Args:
        rotation (Sequence[float]): quaternion (w, x, y, z).
        translation (Sequence[float]): (3,) translation in metres.

    Returns:
        np.ndarray: (4, 4) float64 matrix ``[[R, t], [0, 1]]``.
    """
    mat = np.eye(4)
    mat[:3, :3] = quaternion_to_rotation_matrix(rotation)
    mat[:3, 3] = np.asarray(translation, dtype=np.float64)
    return mat


def record_to_matrix(record: Mapping) -> np.ndarray:
    """4x4 transform of a ``calibrated_sensor`` or ``ego_pose`` record.

    ``calibrated_sensor`` records give sensor->ego, ``ego_pose`` records give
    ego->global.

    Args:
        record (Mapping): devkit record with ``rotation`` and ``translation``.

    Returns:
        np.ndarray: (4, 4) float64 matrix.
    """
    return pose_to_matrix(record['rotation'], record['translation'])


def invert_rigid(mat: np.ndarray) -> np.ndarray:
    """Invert rigid 4x4 transforms exactly (transpose of the rotation).

    Args:
        mat (np.ndarray): (..., 4, 4) rigid transforms.

    Returns:
        np.ndarray: (..., 4, 4) inverses.
    """
    rot = mat[..., :3, :3]
    inv = np.zeros_like(mat)
    inv[..., :3, :3] = np.swapaxes(rot, -1, -2)
    inv[..., :3, 3] = -np.einsum('...ji,...j->...i', rot, mat[..., :3, 3])
    inv[..., 3, 3] = 1.0
    return inv


def yaw_from_rotation(rot: np.ndarray) -> np.ndarray:
    """Yaw of rotation matrices as pyquaternion's ``yaw_pitch_roll[0]``.

    mmdet3d's converter takes box headings from pyquaternion, whose yaw is
    ``atan2(2 (w z - x y), 1 - 2 (y^2 + z^2)) = atan2(-R[0, 1], R[0, 0])``.
    For rotations about z only this is the usual heading
    ``atan2(R[1, 0], R[0, 0])``; with pitch/roll the two differ slightly and
    this function reproduces mmdet3d's values.

    Args:
        rot (np.ndarray): (..., 3, 3) rotation matrices.

    Returns:
        np.ndarray: (...,) yaw in radians, in (-pi, pi].
    """
    return np.arctan2(-rot[..., 0, 1], rot[..., 0, 0])


def matrix_to_list(mat: np.ndarray) -> list:
    """Matrix as nested Python floats, rounded through float32.

    mmdet3d's converter stores every 4x4 matrix as
    ``matrix.astype(np.float32).tolist()``; this does the same so that the
    info values are bit-identical.

    Args:
        mat (np.ndarray): any-shaped array.

    Returns:
        list: nested lists of Python floats.
    """
    return np.asarray(mat).astype(np.float32).tolist()
