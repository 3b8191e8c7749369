"""Base of the BEVFusion-style multi-view image augmentations (resize, crop, flip, rotate).

``BEVFusionCompatImageAug3D`` (one draw per image, with rotation) and
``MIM4DSweepImageAug`` (one draw per camera shared by its sweeps, no
rotation) keep their registered names and keys; the parameters, the draws,
the warp and the 4x4 ``img_aug_matrix`` are this base's, computed by
:func:`render_pretrain.image_augmentation.augment_views_resize_crop_flip_rotate`.
Not registered.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from render_pretrain.image_augmentation import augment_views_resize_crop_flip_rotate
from render_pretrain.seeding import EpochSeededTransformMixin


class ResizeCropFlipRotateImageAug(EpochSeededTransformMixin, BaseTransform):
    """Hold the BEVFusion-style parameters and augment a list of views.

    Random parameters come from ``self.rng``, a generator per DataLoader
    worker and epoch keyed by the run's seed and the rank
    (:class:`render_pretrain.seeding.EpochSeededTransformMixin`, keyed by
    ``SeededRandomnessHook``); test time draws nothing.

    Args:
        final_dim (Sequence[int]): Output size (H, W) in pixels.
        resize_lim (Sequence[float]): Scale range (min, max); at test time
            the mean is used.
        bot_pct_lim (Sequence[float]): Range of the fraction of the resized
            height cut from the bottom; at test time the mean is used.
        rot_lim (Sequence[float], optional): Rotation range in degrees
            (train only); None draws no angle.
        rand_flip (bool): Random horizontal flip (train only).
        is_train (bool): Draw random parameters (else deterministic centre).
        resize_relative (bool): Multiply the drawn scale by ``W_out / W_in``,
            so that ``resize_lim=(1, 1)`` fits any input width to
            ``final_dim``.
        seed (int, optional): Replaces the run's seed in the key of the
            draws (they still differ across workers, epochs and ranks).
    """

    def __init__(self,
                 final_dim: Sequence[int],
                 resize_lim: Sequence[float],
                 bot_pct_lim: Sequence[float] = (0.0, 0.0),
                 rot_lim: Optional[Sequence[float]] = (0.0, 0.0),
                 rand_flip: bool = False,
                 is_train: bool = False,
                 resize_relative: bool = False,
                 seed: Optional[int] = None) -> None:
        if len(final_dim) != 2 or min(final_dim) <= 0:
            raise ValueError(f'{type(self).__name__}: final_dim must be (H, W) > 0, got '
                             f'{final_dim}')
        self.final_dim = tuple(int(v) for v in final_dim)
        self.resize_lim = tuple(float(v) for v in resize_lim)
        self.bot_pct_lim = tuple(float(v) for v in bot_pct_lim)
        self.rot_lim = None if rot_lim is None else tuple(float(v) for v in rot_lim)
        self.rand_flip = rand_flip
        self.is_train = is_train
        self.resize_relative = resize_relative
        self.init_randomness(seed)

    def _augment_views(self, imgs: Sequence[np.ndarray], num_draws: Optional[int] = None
                       ) -> Tuple[List[np.ndarray], np.ndarray]:
        """Augment N views; view ``i`` uses draw ``i mod num_draws`` (None: one per view).

        Returns:
            tuple: N images (H_out, W_out, C) and their (N, 4, 4) float64
            ``img_aug_matrix``.
        """
        rng = self.rng if self.is_train else None  # test time draws nothing
        return augment_views_resize_crop_flip_rotate(
            imgs, rng, self.final_dim, self.resize_lim, self.bot_pct_lim, self.rot_lim,
            self.rand_flip, self.is_train, self.resize_relative, num_draws)

    def __repr__(self) -> str:
        rot = '' if self.rot_lim is None else f'rot_lim={self.rot_lim}, '
        return (f'{self.__class__.__name__}(final_dim={self.final_dim}, '
                f'resize_lim={self.resize_lim}, bot_pct_lim={self.bot_pct_lim}, {rot}'
                f'rand_flip={self.rand_flip}, is_train={self.is_train}, '
                f'resize_relative={self.resize_relative})')
