"""Multi-view image resize/crop/flip/rotate augmentation with its matrix."""
import numpy as np

from mmdet3d.registry import TRANSFORMS
from projects.common.multiview_image_aug import ResizeCropFlipRotateImageAug


@TRANSFORMS.register_module()
class BEVFusionCompatImageAug3D(ResizeCropFlipRotateImageAug):
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

    The parameters, draws, warp and matrix are those of
    :class:`projects.common.multiview_image_aug.ResizeCropFlipRotateImageAug`
    (one draw per image). Random parameters come from ``self.rng``, a
    generator per DataLoader worker and epoch keyed by the run's seed and
    the rank
    (:class:`render_pretrain.seeding.EpochSeededTransformMixin`, keyed by
    ``SeededRandomnessHook``).

    Required keys: ``img`` (list of H x W x 3 arrays), ``cam2img``.
    Added/updated keys: ``img``, ``img_shape``, ``img_aug_matrix``
    (N_cam x 4 x 4, float32), ``lidar_aug_matrix``, ``cam2img``.

    Args: those of
    :class:`projects.common.multiview_image_aug.ResizeCropFlipRotateImageAug`
    (``final_dim``, ``resize_lim``, ``bot_pct_lim``, ``rot_lim``,
    ``rand_flip``, ``is_train``, ``resize_relative``, ``seed``).
    """

    def transform(self, results: dict) -> dict:
        """Augment all views of one sample (see class docstring)."""
        if 'img' not in results:
            raise KeyError('BEVFusionCompatImageAug3D needs results["img"] (load the '
                           'images with LoadMultiViewImageFromFiles first)')
        results['img'], mats = self._augment_views(results['img'])
        results['img_shape'] = self.final_dim
        results['pad_shape'] = self.final_dim
        results['img_aug_matrix'] = mats.astype(np.float32)
        if 'lidar_aug_matrix' not in results:
            results['lidar_aug_matrix'] = np.eye(4, dtype=np.float32)
        cam2img = np.asarray(results['cam2img'], dtype=np.float32)
        padded = np.tile(np.eye(4, dtype=np.float32), (len(cam2img), 1, 1))
        padded[:, :cam2img.shape[1], :cam2img.shape[2]] = cam2img
        results['cam2img'] = padded
        return results
