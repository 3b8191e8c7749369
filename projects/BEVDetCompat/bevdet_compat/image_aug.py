"""Multi-view image resize / crop / flip / rotate that records ``img_aug_matrix``."""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from render_pretrain.image_augmentation import (draw_bevdet_resize_crop_flip_rotate,
                                                image_aug_matrices, warp_image_with_matrix)
from render_pretrain.seeding import EpochSeededTransformMixin


@TRANSFORMS.register_module()
class BEVDetImageAug(EpochSeededTransformMixin, BaseTransform):
    """BEVDet-style image augmentation for every view, with its pixel matrix.

    For each view independently (parameters drawn per view, as in BEVDet's
    ``img_transform``) the original image (H_src, W_src) is mapped to the
    network input (H_in, W_in) = ``final_size`` by one affine pixel map

    ``[u', v'] = R_rot @ F_flip @ (r * [u, v] - [crop_w, crop_h])``

    with resize ``r = W_in / W_src + delta``, a crop window anchored
    ``bot_pct`` above the bottom, an optional horizontal flip
    (``u -> W_in - 1 - u``) and a rotation by ``rot`` degrees about the image
    centre. The image is warped with that same matrix (bilinear), so pixels
    and geometry agree exactly.

    Added / updated keys:

    - ``img`` (list[np.ndarray]): N_cam arrays (H_in, W_in, 3), dtype kept.
    - ``img_aug_matrix`` (list[np.ndarray]): N_cam float32 (4, 4) maps from
      original-image pixels ``(u, v, d, 1)`` to input-image pixels; rows and
      columns 2 and 3 leave the depth ``d`` (metres) unchanged.
    - ``img_shape``, ``pad_shape``: ``(H_in, W_in)``.

    ``cam2img`` is left untouched: the view transformer composes it with
    ``img_aug_matrix``.

    Random parameters come from ``self.rng``, a generator per DataLoader
    worker and epoch keyed by the run's seed and the rank
    (:class:`render_pretrain.seeding.EpochSeededTransformMixin`, keyed by
    ``SeededRandomnessHook``).

    Args:
        final_size (tuple[int, int]): Network input (H_in, W_in) in pixels.
        resize_lim (tuple[float, float]): Range of ``delta`` added to the
            base scale ``W_in / W_src`` in training. Defaults to BEVDet's
            (-0.06, 0.11).
        bot_pct_lim (tuple[float, float]): Range of the fraction of the
            resized height cut from the bottom. Defaults to (0.0, 0.0).
        rot_lim (tuple[float, float]): Rotation range in degrees. Defaults to
            BEVDet's (-5.4, 5.4).
        rand_flip (bool): Random horizontal flip (p = 0.5) in training.
        resize_test (float): ``delta`` at test time. Defaults to 0.0.
        test_mode (bool): Deterministic centred crop, no flip, no rotation.
        seed (int, optional): Replaces the run's seed in the key of the
            draws (they still differ across workers, epochs and ranks).
    """

    def __init__(self,
                 final_size: Sequence[int],
                 resize_lim: Tuple[float, float] = (-0.06, 0.11),
                 bot_pct_lim: Tuple[float, float] = (0.0, 0.0),
                 rot_lim: Tuple[float, float] = (-5.4, 5.4),
                 rand_flip: bool = True,
                 resize_test: float = 0.0,
                 test_mode: bool = False,
                 seed: Optional[int] = None) -> None:
        if len(final_size) != 2 or min(final_size) <= 0:
            raise ValueError('BEVDetImageAug: final_size must be (H_in, W_in) > 0, got '
                             f'{final_size}')
        self.final_size = (int(final_size[0]), int(final_size[1]))
        self.resize_lim = tuple(resize_lim)
        self.bot_pct_lim = tuple(bot_pct_lim)
        self.rot_lim = tuple(rot_lim)
        self.rand_flip = rand_flip
        self.resize_test = resize_test
        self.test_mode = test_mode
        self.init_randomness(seed)

    def sample_params(self, src_hw: np.ndarray) -> dict:
        """Draw the augmentation of every view (BEVDet's draw order, in the core).

        See :func:`render_pretrain.image_augmentation.draw_bevdet_resize_crop_flip_rotate`.

        Args:
            src_hw (np.ndarray): (N_cam, 2) original image sizes (H, W), pixels.

        Returns:
            dict: ``resize`` (N_cam,), ``crop`` (N_cam, 2) as (crop_w, crop_h)
            in resized pixels, ``flip`` (N_cam,) bool, ``rot`` (N_cam,) degrees.
        """
        return draw_bevdet_resize_crop_flip_rotate(
            None if self.test_mode else self.rng, src_hw, self.final_size, self.resize_lim,
            self.bot_pct_lim, self.rot_lim, self.rand_flip, self.resize_test, self.test_mode)

    def build_matrices(self, params: dict) -> np.ndarray:
        """Compose the per-view pixel maps.

        Args:
            params (dict): Output of :meth:`sample_params`.

        Returns:
            np.ndarray: (N_cam, 4, 4) float64 ``img_aug_matrix``.
        """
        return image_aug_matrices(params['resize'], params['crop'], params['flip'],
                                  params['rot'], self.final_size)

    def transform(self, results: dict) -> dict:
        """Augment every view of ``results['img']`` and record its matrix.

        Args:
            results (dict): Needs ``img``: list of N_cam arrays (H_src, W_src, 3).

        Returns:
            dict: ``results`` with ``img``, ``img_aug_matrix``, ``img_shape``
            and ``pad_shape`` set.
        """
        if 'img' not in results or not isinstance(results['img'], (list, tuple)):
            raise KeyError('BEVDetImageAug needs results["img"] as a list of per-view arrays '
                           '(run LoadMultiViewImageFromFiles first)')
        imgs = results['img']
        src_hw = np.array([img.shape[:2] for img in imgs], dtype=np.float64)
        mats = self.build_matrices(self.sample_params(src_hw))
        f_h, f_w = self.final_size
        results['img'] = [warp_image_with_matrix(img, mat, self.final_size)
                          for img, mat in zip(imgs, mats)]
        results['img_aug_matrix'] = list(mats.astype(np.float32))
        results['img_shape'] = (f_h, f_w)
        results['pad_shape'] = (f_h, f_w)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(final_size={self.final_size}, '
                f'resize_lim={self.resize_lim}, bot_pct_lim={self.bot_pct_lim}, '
                f'rot_lim={self.rot_lim}, rand_flip={self.rand_flip}, '
                f'resize_test={self.resize_test}, test_mode={self.test_mode})')
