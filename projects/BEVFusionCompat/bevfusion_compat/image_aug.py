"""Multi-view image resize/crop/flip/rotate augmentation with its matrix."""
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from render_pretrain.image_augmentation import (crop_to_canvas, draw_resize_crop_flip,
                                                image_aug_matrices)
from render_pretrain.seeding import EpochSeededTransformMixin


@TRANSFORMS.register_module()
class BEVFusionCompatImageAug3D(EpochSeededTransformMixin, BaseTransform):
    """Resize, crop, flip and rotate every camera image; record the 2D map.

    Same semantics as BEVFusion's ``ImageAug3D`` (which is not in the
    mmdet3d 1.4.0 wheel): each image is scaled by ``s`` drawn from
    ``resize_lim``, cropped to ``final_dim`` (bottom part kept, the vertical
    offset drawn from ``bot_pct_lim``), optionally flipped horizontally and
    rotated by an angle from ``rot_lim`` (degrees) about the crop centre.
    The resulting image-plane map ``u' = A @ [u, v, 1]`` is written as a
    4x4 ``img_aug_matrix`` per camera (A in rows/cols 0..1 and translation
    in column 3), so a pixel (u, v) of the original image (pixels) lands at
    ``img_aug_matrix[:2, :2] @ (u, v) + img_aug_matrix[:2, 3]``.

    ``lidar_aug_matrix`` (4x4, identity when no 3D augmentation set it) is
    added if missing, and ``cam2img`` is padded to 4x4.

    Random parameters come from ``self.rng``, a generator per DataLoader
    worker and epoch keyed by the run's seed and the rank
    (:class:`render_pretrain.seeding.EpochSeededTransformMixin`, keyed by
    ``SeededRandomnessHook``).

    Required keys: ``img`` (list of H x W x 3 arrays), ``cam2img``.
    Added/updated keys: ``img``, ``img_shape``, ``img_aug_matrix``
    (N_cam x 4 x 4, float32), ``lidar_aug_matrix``, ``cam2img``.

    Args:
        final_dim (Sequence[int]): Output size (H, W) in pixels.
        resize_lim (Sequence[float]): Scale range (min, max); at test time
            the mean is used.
        bot_pct_lim (Sequence[float]): Range of the fraction of the resized
            height cut from the bottom; at test time the mean is used.
        rot_lim (Sequence[float]): Rotation range in degrees (train only).
        rand_flip (bool): Random horizontal flip (train only).
        is_train (bool): Draw random parameters (else deterministic centre).
        resize_relative (bool): Multiply the drawn scale by ``W_out / W_in``,
            so that ``resize_lim=(1, 1)`` fits any input width to
            ``final_dim`` (as ``MIM4DSweepImageAug``).
        seed (int, optional): Replaces the run's seed in the key of the
            draws (they still differ across workers, epochs and ranks).
    """

    def __init__(self,
                 final_dim: Sequence[int],
                 resize_lim: Sequence[float],
                 bot_pct_lim: Sequence[float] = (0.0, 0.0),
                 rot_lim: Sequence[float] = (0.0, 0.0),
                 rand_flip: bool = False,
                 is_train: bool = False,
                 resize_relative: bool = False,
                 seed: Optional[int] = None) -> None:
        self.final_dim = tuple(int(v) for v in final_dim)
        self.resize_lim = tuple(float(v) for v in resize_lim)
        self.bot_pct_lim = tuple(float(v) for v in bot_pct_lim)
        self.rot_lim = tuple(float(v) for v in rot_lim)
        self.rand_flip = rand_flip
        self.is_train = is_train
        self.resize_relative = resize_relative
        self.init_randomness(seed)

    def _sample_params(self, height: int,
                       width: int) -> Tuple[float, Tuple[int, int], bool,
                                            float]:
        """Draw (scale, crop (x0, y0) in pixels, flip, angle in degrees)."""
        rng = self.rng if self.is_train else None  # test time draws nothing
        scale, crop_w, crop_h, flip = draw_resize_crop_flip(
            rng, (height, width), self.final_dim, self.resize_lim, self.bot_pct_lim,
            self.rand_flip, self.is_train, self.resize_relative)
        angle = float(rng.uniform(*self.rot_lim)) if self.is_train else 0.0
        return scale, (crop_w, crop_h), flip, angle

    def _augment(self, img: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Augment one image; return it and its 4x4 image-plane matrix."""
        height, width = img.shape[:2]
        scale, (x0, y0), flip, angle = self._sample_params(height, width)
        out = crop_to_canvas(mmcv.imresize(img, (int(width * scale), int(height * scale))),
                             x0, y0, self.final_dim)
        if flip:
            out = out[:, ::-1].copy()
        if angle != 0.0:
            out = mmcv.imrotate(out, angle)
        aug = image_aug_matrices([scale], [(x0, y0)], [flip], [angle], self.final_dim)[0]
        return out, aug

    def transform(self, results: dict) -> dict:
        """Augment all views of one sample (see class docstring)."""
        if 'img' not in results:
            raise KeyError('BEVFusionCompatImageAug3D needs results["img"] (load the '
                           'images with LoadMultiViewImageFromFiles first)')
        outs = [self._augment(img) for img in results['img']]
        results['img'] = [img for img, _ in outs]
        results['img_shape'] = self.final_dim
        results['pad_shape'] = self.final_dim
        results['img_aug_matrix'] = np.stack([aug for _, aug in outs]
                                             ).astype(np.float32)
        if 'lidar_aug_matrix' not in results:
            results['lidar_aug_matrix'] = np.eye(4, dtype=np.float32)
        cam2img = np.asarray(results['cam2img'], dtype=np.float32)
        padded = np.tile(np.eye(4, dtype=np.float32), (len(cam2img), 1, 1))
        padded[:, :cam2img.shape[1], :cam2img.shape[2]] = cam2img
        results['cam2img'] = padded
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(final_dim={self.final_dim}, '
                f'resize_lim={self.resize_lim}, '
                f'bot_pct_lim={self.bot_pct_lim}, rot_lim={self.rot_lim}, '
                f'rand_flip={self.rand_flip}, is_train={self.is_train}, '
                f'resize_relative={self.resize_relative})')
