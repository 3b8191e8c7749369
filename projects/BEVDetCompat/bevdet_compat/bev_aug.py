"""BEVDet's BEV data augmentation (``bda``): rotate, scale and flip boxes and BEV geometry alike."""
import math
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from render_pretrain.seeding import EpochSeededTransformMixin


def bda_matrix(rot_deg: float, scale: float, flip_dx: bool, flip_dy: bool) -> np.ndarray:
    """BEVDet's BEV augmentation matrix ``flip @ scale @ rot`` (lidar frame).

    Args:
        rot_deg (float): Rotation about z, degrees, counter-clockwise seen from above.
        scale (float): Isotropic scale.
        flip_dx (bool): Negate x (mirror about the y axis).
        flip_dy (bool): Negate y.

    Returns:
        np.ndarray: (3, 3) float64 matrix acting on lidar (x, y, z), metres.
    """
    c, s = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    flip = np.diag([-1.0 if flip_dx else 1.0, -1.0 if flip_dy else 1.0, 1.0])
    return flip @ (scale * np.eye(3)) @ rot


@TRANSFORMS.register_module()
class BEVDetBEVAug(EpochSeededTransformMixin, BaseTransform):
    """BEVDet's BEV data augmentation, boxes side (official ``bda_aug_conf``).

    Draws a rotation ``U(rot_lim)`` (degrees), a scale ``U(scale_lim)`` and x /
    y flips, moves ``gt_bboxes_3d`` (centres and velocities by the matrix,
    sizes by the scale, yaw by the rotation then ``pi - yaw`` / ``-yaw`` per
    flip, as official BEVDet) and records ``bda_matrix`` (3, 3); the detector
    applies the same matrix to the lifted frustum points, so the BEV features
    move with the boxes. Test-time pipelines leave it out (identity).

    Random parameters come from ``self.rng``, a generator per DataLoader
    worker and epoch keyed by the run's seed and rank
    (:class:`render_pretrain.seeding.EpochSeededTransformMixin`, keyed by
    ``SeededRandomnessHook``).

    Args:
        rot_lim (Sequence[float]): Rotation range, degrees. Defaults to (-22.5, 22.5).
        scale_lim (Sequence[float]): Scale range. Defaults to (0.95, 1.05).
        flip_dx_ratio (float): Probability of the x flip. Defaults to 0.5.
        flip_dy_ratio (float): Probability of the y flip. Defaults to 0.5.
        seed (int, optional): Replaces the run's seed in the generator's key.
    """

    def __init__(self, rot_lim: Sequence[float] = (-22.5, 22.5),
                 scale_lim: Sequence[float] = (0.95, 1.05), flip_dx_ratio: float = 0.5,
                 flip_dy_ratio: float = 0.5, seed: Optional[int] = None) -> None:
        self.rot_lim, self.scale_lim = tuple(rot_lim), tuple(scale_lim)
        self.flip_dx_ratio, self.flip_dy_ratio = flip_dx_ratio, flip_dy_ratio
        self.init_randomness(seed)

    def transform(self, results: dict) -> dict:
        """Augment ``results['gt_bboxes_3d']`` and write ``results['bda_matrix']``.

        Raises:
            KeyError: If ``gt_bboxes_3d`` is missing (put it after
                ``LoadAnnotations3D``).
        """
        if 'gt_bboxes_3d' not in results:
            raise KeyError('BEVDetBEVAug needs gt_bboxes_3d: place it after LoadAnnotations3D')
        rng = self.rng
        rot = float(rng.uniform(*self.rot_lim))
        scale = float(rng.uniform(*self.scale_lim))
        flip_dx = bool(rng.random() < self.flip_dx_ratio)
        flip_dy = bool(rng.random() < self.flip_dy_ratio)
        mat = bda_matrix(rot, scale, flip_dx, flip_dy)
        boxes = results['gt_bboxes_3d']
        t = boxes.tensor.clone()
        if len(t):
            m = t.new_tensor(mat)
            t[:, :3] = t[:, :3] @ m.T  # bottom centres (z scales with h: gravity centre too)
            t[:, 3:6] = t[:, 3:6] * scale
            t[:, 6] = t[:, 6] + math.radians(rot)
            if flip_dx:
                t[:, 6] = math.pi - t[:, 6]
            if flip_dy:
                t[:, 6] = -t[:, 6]
            if t.shape[1] > 7:
                t[:, 7:9] = t[:, 7:9] @ m[:2, :2].T
        results['gt_bboxes_3d'] = type(boxes)(t, box_dim=t.shape[1], with_yaw=boxes.with_yaw,
                                              origin=(0.5, 0.5, 0))
        results['bda_matrix'] = mat.astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(rot_lim={self.rot_lim}, scale_lim={self.scale_lim}, '
                f'flip_dx_ratio={self.flip_dx_ratio}, flip_dy_ratio={self.flip_dy_ratio})')


__all__ = ['BEVDetBEVAug', 'bda_matrix']
