"""Multi-sweep multi-view image loading and sweep-consistent image augmentation."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from mmdet3d.registry import TRANSFORMS
from projects.common.multiview_image_aug import ResizeCropFlipRotateImageAug

_SWEEP_KEYS = ('img_path', 'timestamp', 'cam2img', 'cam2ego', 'lidar2cam')


def _pad_intrinsics(cam2img: np.ndarray) -> np.ndarray:
    """(3, 3) or (4, 4) intrinsics -> (4, 4) float64."""
    out = np.eye(4)
    cam2img = np.asarray(cam2img, dtype=np.float64)
    out[:cam2img.shape[0], :cam2img.shape[1]] = cam2img
    return out


@TRANSFORMS.register_module()
class MIM4DLoadMultiViewSweeps(BaseTransform):
    """Load the key frame and ``num_sweeps - 1`` previous frames of every camera.

    Sweep index ``s = 0`` is the key frame, ``s = 1`` the newest previous
    camera frame, ``s = S - 1`` the oldest. Images are ordered sweep-major:
    view ``s * N_cam + n`` is camera ``n`` of sweep ``s``. Cameras are those
    of ``results['images']`` (dict order) or ``camera_names``; any count.

    Frames. Every camera frame of the info carries its own ego pose (the
    camera ``sample_data``'s, see
    :mod:`render_pretrain.nuscenes_infos.camera_sweeps`), folded into
    ``lidar2cam``: key-frame LiDAR -> that camera at its own timestamp. The
    own frame of sweep ``s`` ("sweep LiDAR frame") is the key frame's LiDAR
    mounting placed at the ego pose of the REFERENCE camera (camera 0) of
    that sweep: ``sweep2lidar[s] = cam2lidar[s, 0] @ inv(cam2ego[s, 0]) @
    lidar2ego`` (metric rigid transform, metres); ``sweep2lidar[0]`` is the
    identity (the key frame's own LiDAR frame). A camera of sweep ``s``
    maps into that frame with ``inv(sweep2lidar[s]) @ inv(lidar2cam[s, n])``.

    Short history. Near the start of a scene a camera has fewer previous
    frames than needed: the OLDEST available one is repeated (the key frame
    itself when there is none, e.g. the first frame of a scene),
    ``sweep_repeated[s, n]`` is True for the repeated copies and
    ``sweep_source[s, n]`` names the sweep whose frame slot ``(s, n)`` holds
    (``s`` itself unless repeated). The model uses it so that a context view
    holding a copy of a target frame's image never reaches the encoder
    (:class:`MIM4D`).

    Required keys: ``images`` (per camera ``img_path`` joined with its
    prefix by the dataset, ``cam2img``, ``cam2ego``, ``lidar2cam``,
    ``timestamp``), ``cam_sweeps`` (per camera, newest first, each with
    ``img_path`` relative to the dataset root, ``timestamp``, ``cam2img``,
    ``cam2ego``, ``lidar2cam``), ``data_root`` (the DATASET's root, set by
    :class:`MIM4DNuScenesDataset`; there is no second root to keep in step)
    and ``lidar_points['lidar2ego']``.

    Added keys (numpy, float32 unless stated):

    - ``img``: list of S * N_cam H x W x 3 images (BGR as mmcv loads them);
      ``img_path`` (list of str), ``ori_shape`` / ``img_shape``, ``num_views``.
    - ``cam2img`` (S * N_cam, 4, 4) intrinsics (original image pixels).
    - ``lidar2cam`` (S * N_cam, 4, 4) key-frame LiDAR -> sweep camera.
    - ``img_aug_matrix`` (S * N_cam, 4, 4) identity (see
      :class:`MIM4DSweepImageAug`).
    - ``sweep2lidar`` (S, 4, 4) sweep LiDAR frame -> key-frame LiDAR frame.
    - ``sweep_time_offsets`` (S,) seconds of each sweep's reference camera
      relative to the key frame (<= 0).
    - ``sweep_repeated`` (S, N_cam) bool; ``sweep_source`` (S, N_cam) int64,
      the sweep index of the frame each slot holds; ``num_sweeps`` (int) = S,
      ``num_cams`` (int) = N_cam, ``camera_names`` (list of str).

    Args:
        num_sweeps (int): S, frames per camera including the key frame (>= 1).
        camera_names (Sequence[str], optional): Cameras to load, in order
            (default: all cameras of ``results['images']``).
        to_float32 (bool): Convert the images to float32.
        color_type (str): ``mmcv.imfrombytes`` flag.
        backend_args (dict, optional): File backend arguments.
    """

    def __init__(self,
                 num_sweeps: int,
                 camera_names: Optional[Sequence[str]] = None,
                 to_float32: bool = True,
                 color_type: str = 'color',
                 backend_args: Optional[dict] = None) -> None:
        if num_sweeps < 1:
            raise ValueError(f'num_sweeps must be >= 1, got {num_sweeps}')
        self.num_sweeps = int(num_sweeps)
        self.camera_names = list(camera_names) if camera_names is not None else None
        self.to_float32 = to_float32
        self.color_type = color_type
        self.backend_args = backend_args

    def _frames_of_camera(self, results: dict, cam: str) -> Tuple[List[dict], List[bool]]:
        """S frame dicts of one camera (key frame first) and repeat flags."""
        images = results['images']
        if cam not in images:
            raise KeyError(f'MIM4DLoadMultiViewSweeps: camera {cam!r} not in '
                           f'results["images"] (cameras: {sorted(images)})')
        key = dict(images[cam])
        missing = [k for k in _SWEEP_KEYS if k not in key]
        if missing:
            raise KeyError(f'MIM4DLoadMultiViewSweeps: images[{cam!r}] lacks {missing}')
        frames = [key]
        sweeps = results.get('cam_sweeps')
        if sweeps is None and self.num_sweeps > 1:
            raise KeyError('MIM4DLoadMultiViewSweeps: the info has no "cam_sweeps"; '
                           'regenerate it with tools/create_data.py (max_cam_sweeps >= '
                           f'{self.num_sweeps - 1})')
        for sweep in (sweeps or {}).get(cam, [])[:self.num_sweeps - 1]:
            missing = [k for k in _SWEEP_KEYS if k not in sweep]
            if missing:
                raise KeyError(f'MIM4DLoadMultiViewSweeps: cam_sweeps[{cam!r}] entry lacks '
                               f'{missing}')
            frames.append(dict(sweep, img_path=osp.join(results['data_root'], sweep['img_path'])))
        repeated = [False] * len(frames)
        while len(frames) < self.num_sweeps:
            frames.append(frames[-1])
            repeated.append(True)
        return frames, repeated

    def transform(self, results: dict) -> dict:
        """Load all frames of all cameras (see the class docstring)."""
        if 'images' not in results:
            raise KeyError('MIM4DLoadMultiViewSweeps needs results["images"] (camera '
                           'modality of the dataset)')
        lidar_points = results.get('lidar_points', {})
        if 'lidar2ego' not in lidar_points:
            raise KeyError('MIM4DLoadMultiViewSweeps needs results["lidar_points"]'
                           '["lidar2ego"] (mmdet3d 1.x info file)')
        lidar2ego = np.asarray(lidar_points['lidar2ego'], dtype=np.float64)
        if self.num_sweeps > 1 and results.get('data_root') is None:
            raise KeyError('MIM4DLoadMultiViewSweeps needs results["data_root"], the dataset '
                           'root that camera sweep paths are relative to: use '
                           "dataset type 'MIM4DNuScenesDataset'")
        cams = self.camera_names or list(results['images'])
        per_cam = [self._frames_of_camera(results, cam) for cam in cams]
        # frames[s][n]: sweep-major order.
        frames = [[per_cam[n][0][s] for n in range(len(cams))] for s in range(self.num_sweeps)]
        repeated = np.array([[per_cam[n][1][s] for n in range(len(cams))]
                             for s in range(self.num_sweeps)], dtype=bool)
        # The sweep whose frame each slot holds: the newest non-repeated slot at or before it.
        source = np.zeros(repeated.shape, dtype=np.int64)
        for s in range(1, self.num_sweeps):
            source[s] = np.where(repeated[s], source[s - 1], s)
        flat = [frame for sweep in frames for frame in sweep]
        paths = [frame['img_path'] for frame in flat]
        imgs = [mmcv.imfrombytes(get(path, backend_args=self.backend_args),
                                 flag=self.color_type) for path in paths]
        if self.to_float32:
            imgs = [img.astype(np.float32) for img in imgs]
        lidar2cam = np.stack([np.asarray(f['lidar2cam'], dtype=np.float64) for f in flat])
        cam2img = np.stack([_pad_intrinsics(f['cam2img']) for f in flat])
        sweep2lidar = np.stack([np.eye(4)] + [
            np.linalg.inv(lidar2cam[s * len(cams)])
            @ np.linalg.inv(np.asarray(frames[s][0]['cam2ego'], dtype=np.float64)) @ lidar2ego
            for s in range(1, self.num_sweeps)])
        key_time = float(frames[0][0]['timestamp'])
        results.update(
            img=imgs,
            img_path=paths,
            ori_shape=imgs[0].shape[:2],
            img_shape=imgs[0].shape[:2],
            num_views=len(imgs),
            cam2img=cam2img.astype(np.float32),
            lidar2cam=lidar2cam.astype(np.float32),
            img_aug_matrix=np.tile(np.eye(4, dtype=np.float32), (len(imgs), 1, 1)),
            sweep2lidar=sweep2lidar.astype(np.float32),
            sweep_time_offsets=np.array([float(sweep[0]['timestamp']) - key_time
                                         for sweep in frames], dtype=np.float32),
            sweep_repeated=repeated,
            sweep_source=source,
            num_sweeps=self.num_sweeps,
            num_cams=len(cams),
            camera_names=list(cams))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_sweeps={self.num_sweeps}, '
                f'camera_names={self.camera_names})')


@TRANSFORMS.register_module()
class MIM4DSweepImageAug(ResizeCropFlipRotateImageAug):
    """Resize, crop and flip every camera, identically for all its sweeps.

    One set of parameters (scale ``s`` from ``resize_lim``, crop offset, flip)
    is drawn per CAMERA and applied to all S frames of that camera, so that
    the temporal volumes of one camera see the same image geometry. The
    image-plane map of each view is recorded as a 4x4 ``img_aug_matrix``
    (original pixels ``(u, v)`` -> augmented ``A[:2, :2] @ (u, v) +
    A[:2, 3]``, BEVFusion convention), composed onto any existing one.

    Crop: the resized image keeps its bottom part (vertical offset from
    ``bot_pct_lim``); horizontally a random offset (train) or the centre.
    Parameters, draws, warp and matrix are those of
    :class:`projects.common.multiview_image_aug.ResizeCropFlipRotateImageAug`
    with one draw per camera and no rotation. Random parameters come from
    ``self.rng``, a generator per DataLoader worker and epoch keyed by the
    run's seed and the rank
    (:class:`render_pretrain.seeding.EpochSeededTransformMixin`, keyed by
    ``SeededRandomnessHook``).

    Required keys: ``img`` (S * N_cam images, sweep-major), ``num_cams``,
    ``img_aug_matrix``. Updated: ``img``, ``img_shape``, ``pad_shape``,
    ``img_aug_matrix``.

    Args:
        final_dim (Sequence[int]): Output size (H, W), pixels.
        resize_lim (Sequence[float]): Scale range (min, max); mean at test time.
        resize_relative (bool): Multiply the drawn scale by ``W_out / W_in``
            (so ``resize_lim=(1, 1)`` fits any input width to ``final_dim``).
        bot_pct_lim (Sequence[float]): Fraction of the resized height cut at
            the bottom, range; mean at test time.
        rand_flip (bool): Random horizontal flip (train only).
        is_train (bool): Draw random parameters.
        seed (int, optional): Replaces the run's seed in the key of the
            draws (they still differ across workers, epochs and ranks).
    """

    def __init__(self, final_dim: Sequence[int], resize_lim: Sequence[float], **kwargs) -> None:
        if 'rot_lim' in kwargs:
            raise TypeError('MIM4DSweepImageAug does not rotate (no rot_lim): the sweeps of a '
                            'camera share one resize / crop / flip')
        super().__init__(final_dim, resize_lim, rot_lim=None, **kwargs)

    def transform(self, results: dict) -> dict:
        """Augment all views (see the class docstring)."""
        for key in ('img', 'num_cams', 'img_aug_matrix'):
            if key not in results:
                raise KeyError(f'MIM4DSweepImageAug needs results[{key!r}] '
                               '(run MIM4DLoadMultiViewSweeps first)')
        imgs, num_cams = results['img'], int(results['num_cams'])
        if len(imgs) % num_cams:
            raise ValueError(f'{len(imgs)} images are not a multiple of num_cams={num_cams}')
        out_imgs, mats = self._augment_views(imgs, num_draws=num_cams)
        results['img'] = out_imgs
        results['img_shape'] = self.final_dim
        results['pad_shape'] = self.final_dim
        results['img_aug_matrix'] = (mats @ np.asarray(
            results['img_aug_matrix'], dtype=np.float64)).astype(np.float32)
        return results
