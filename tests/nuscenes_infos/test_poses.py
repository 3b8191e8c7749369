"""Pose helpers against pyquaternion (the devkit's own quaternion class)."""
import numpy as np
from pyquaternion import Quaternion

from render_pretrain.nuscenes_infos.poses import (invert_rigid, pose_to_matrix,
                                                  quaternion_to_rotation_matrix,
                                                  yaw_from_rotation)


def test_rotation_matrix_matches_pyquaternion():
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(20, 4))
    ours = quaternion_to_rotation_matrix(quats)
    ref = np.stack([Quaternion(q / np.linalg.norm(q)).rotation_matrix for q in quats])
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    yaw_ref = np.array([Quaternion(q / np.linalg.norm(q)).yaw_pitch_roll[0] for q in quats])
    np.testing.assert_allclose(yaw_from_rotation(ours), yaw_ref, atol=1e-12)


def test_invert_rigid_is_inverse():
    mat = pose_to_matrix(Quaternion(axis=[0.2, 0.3, 1.0], angle=0.7).elements,
                         [3.0, -2.0, 1.5])
    np.testing.assert_allclose(invert_rigid(mat) @ mat, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(invert_rigid(mat), np.linalg.inv(mat), atol=1e-12)
