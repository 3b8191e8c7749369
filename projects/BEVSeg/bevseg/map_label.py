"""Load the rasterised BEV map label of a sample and pack it."""
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmdet3d.registry import TRANSFORMS
from render_pretrain.nuscenes_infos.map_labels import BEV_MAP_CLASSES, load_map_label

LABEL_SCOPE = ((-50.0, 50.0, 0.5), (-50.0, 50.0, 0.5))

# Keys stock mmdet3d transforms set when they move the points in BEV.
_BEV_AUG_KEYS = ('pcd_rotation', 'pcd_rotation_angle', 'pcd_scale_factor', 'pcd_trans',
                 'pcd_horizontal_flip', 'pcd_vertical_flip')


def _crop_slices(label_scope, output_scope):
    """Index slices of ``output_scope`` inside a label grid (aligned cells)."""
    slices = []
    for axis, ((l_min, l_max, l_step), (o_min, o_max, o_step)) in zip(
            'xy', zip(label_scope, output_scope)):
        start = (o_min - l_min) / l_step
        stop = (o_max - l_min) / l_step
        aligned = all(abs(v - round(v)) < 1e-6 for v in (start, stop))
        if abs(o_step - l_step) > 1e-9 or not aligned or round(start) < 0 or \
                round(stop) > round((l_max - l_min) / l_step):
            raise ValueError(
                f'LoadBEVMapLabel: output_scope {axis} {(o_min, o_max, o_step)} must lie inside '
                f'the label grid {(l_min, l_max, l_step)} on its cell boundaries, with the '
                'same cell size')
        slices.append(slice(int(round(start)), int(round(stop))))
    return tuple(slices)


@TRANSFORMS.register_module()
class LoadBEVMapLabel(BaseTransform):
    """Read ``map_seg`` (C, X, Y) bool from ``results['map_seg_file']``.

    The file is the npz written by ``tools/create_data.py``
    (:mod:`render_pretrain.nuscenes_infos.map_labels`): classes
    ``drivable_area, ped_crossing, walkway, stop_line, carpark_area,
    divider``, indexed ``[class, ix, iy]`` with ix along LiDAR x, over
    ``label_scope`` (default +-50 m at 0.5 m, 200 x 200) in the
    **un-augmented** LiDAR frame. ``map_seg_file`` is the absolute path that
    :class:`BEVSegNuScenesDataset` resolves from the info's ``map_seg_path``
    (relative to the info file's folder).

    Adds ``gt_map_seg`` (C, X_out, Y_out) bool: the label cropped to
    ``output_scope`` (must lie on the label's cell boundaries with the same
    cell size), or the whole label.

    Args:
        classes (Sequence[str]): Expected classes (their count is checked
            against the file).
        label_scope (Sequence): Grid of the files, ((x_min, x_max, step),
            (y_min, y_max, step)), metres.
        output_scope (Sequence, optional): Grid to crop to (None: all).
    """

    def __init__(self, classes: Sequence[str] = BEV_MAP_CLASSES,
                 label_scope: Sequence = LABEL_SCOPE,
                 output_scope: Optional[Sequence] = None) -> None:
        self.classes = tuple(classes)
        self.label_scope = tuple(tuple(float(v) for v in axis) for axis in label_scope)
        self.output_scope = (None if output_scope is None else
                             tuple(tuple(float(v) for v in axis) for axis in output_scope))
        self.label_shape = tuple(int(round((high - low) / step))
                                 for low, high, step in self.label_scope)
        self.slices = (None if self.output_scope is None else
                       _crop_slices(self.label_scope, self.output_scope))

    def transform(self, results: dict) -> dict:
        path = results.get('map_seg_file')
        if path is None:
            raise KeyError(
                f"sample {results.get('token', results.get('sample_idx'))!r} has no map label: "
                'its info entry needs "map_seg_path" (tools/create_data.py writes it when the '
                'map expansion exists) and the dataset must be BEVSegNuScenesDataset, which '
                'resolves it to "map_seg_file"')
        label = load_map_label(path)
        expected = (len(self.classes), ) + self.label_shape
        if label.shape != expected or label.dtype != bool:
            raise ValueError(f'{path}: map_seg has shape {label.shape} dtype {label.dtype}, '
                             f'expected {expected} bool ([class, ix, iy] over '
                             f'{self.label_scope})')
        if self.slices is not None:
            label = label[:, self.slices[0], self.slices[1]]
        results['gt_map_seg'] = np.ascontiguousarray(label)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(classes={self.classes}, '
                f'label_scope={self.label_scope}, output_scope={self.output_scope})')


def _check_no_bev_augmentation(results: dict) -> None:
    """Raise if the pipeline moved the points in BEV (labels would not follow)."""
    moved = []
    for key in _BEV_AUG_KEYS:
        if key not in results:
            continue
        value = results[key]
        if key in ('pcd_horizontal_flip', 'pcd_vertical_flip'):
            if bool(value):
                moved.append(key)
        elif key == 'pcd_scale_factor':
            if not np.isclose(float(value), 1.0):
                moved.append(key)
        else:
            value = np.asarray(value.numpy() if torch.is_tensor(value) else value, float)
            identity = np.eye(value.shape[0]) if value.ndim == 2 else np.zeros_like(value)
            if not np.allclose(value, identity):
                moved.append(key)
    if 'lidar_aug_matrix' in results and not np.allclose(
            np.asarray(results['lidar_aug_matrix'], float), np.eye(4)):
        moved.append('lidar_aug_matrix')
    if moved:
        raise ValueError(
            f'PackBEVSegInputs: the pipeline applied a BEV augmentation ({moved}) but the map '
            'label is in the un-augmented LiDAR frame; remove GlobalRotScaleTrans / '
            'RandomFlip3D (or their settings) from BEV segmentation pipelines')


@TRANSFORMS.register_module()
class PackBEVSegInputs(Pack3DDetInputs):
    """``Pack3DDetInputs`` that also packs the map label.

    Adds the data-sample field ``gt_map_seg`` ([C, X, Y] bool tensor) when
    ``results`` holds ``gt_map_seg`` (``LoadBEVMapLabel``). The label is in
    the un-augmented LiDAR frame, so the packer refuses samples whose
    points were rotated, scaled, translated or flipped in BEV
    (``pcd_rotation``, ``pcd_scale_factor``, ``pcd_trans``,
    ``pcd_*_flip``, a non-identity ``lidar_aug_matrix``): BEV segmentation
    configs apply no BEV augmentation (image-space augmentation, which only
    changes ``img_aug_matrix``, is fine).
    """

    def pack_single_results(self, results: dict) -> dict:
        _check_no_bev_augmentation(results)
        packed = super().pack_single_results(results)
        if 'gt_map_seg' in results:
            packed['data_samples'].gt_map_seg = torch.from_numpy(
                np.ascontiguousarray(results['gt_map_seg']))
        return packed
