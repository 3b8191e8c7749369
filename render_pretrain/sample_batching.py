"""Collate per-sample inputs into batch tensors (meta matrices, LiDAR points).

* :func:`stack_sample_meta`: one meta entry (e.g. ``lidar2cam``) of every
  sample of a batch, stacked into one tensor.
* :func:`pack_points`: per-sample point clouds packed into one flat list of
  points plus their batch index (the packed layout of the renderers and
  :func:`render_pretrain.camera_geometry.render_depth_map_from_points`).

Pure PyTorch / NumPy: the samples' ``metainfo`` dicts are passed in, so the
detectors of every project (NS-MAE, BEVSeg, MIM4D) stack the same way.
"""
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

__all__ = ['stack_sample_meta', 'pack_points']


def stack_sample_meta(metainfos: Sequence[Mapping], key: str, ref: Tensor,
                      default: Optional[np.ndarray] = None) -> Tensor:
    """Stack ``metainfo[key]`` of every sample into one tensor.

    Example:
        >>> metas = [dict(m=np.eye(2)), dict(m=2 * np.eye(2))]
        >>> stack_sample_meta(metas, 'm', torch.zeros(1)).shape
        torch.Size([2, 2, 2])

    Args:
        metainfos (Sequence[Mapping]): B per-sample meta dicts
            (``Det3DDataSample.metainfo``).
        key (str): The entry, e.g. ``'cam2img'`` (N_cam, 4, 4).
        ref (Tensor): The result takes its dtype and device.
        default (np.ndarray, optional): Value for a sample without ``key``
            (e.g. an identity ``img_aug_matrix``); None: such a sample is an
            error.

    Returns:
        Tensor: (B, *shape of one entry), ``ref``'s dtype and device.

    Raises:
        KeyError: a sample lacks ``key`` and there is no default (the
            message names the key and where to add it).
    """
    values = []
    for meta in metainfos:
        if key in meta:
            values.append(np.asarray(meta[key], dtype=np.float64))
        elif default is not None:
            values.append(np.asarray(default, dtype=np.float64))
        else:
            raise KeyError(f'data sample meta has no {key!r}: add it to '
                           'Pack3DDetInputs(meta_keys=...) and the pipeline')
    return ref.new_tensor(np.stack(values))


def pack_points(points: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
    """Concatenate per-sample points and record the sample of each.

    Example:
        >>> xyz, batch_idx = pack_points([torch.ones(2, 4), torch.zeros(1, 4)])
        >>> xyz.shape, batch_idx.tolist()
        (torch.Size([3, 3]), [0, 0, 1])

    Args:
        points (Sequence[Tensor]): B tensors (P_b, C >= 3), xyz first (LiDAR
            frame, metres); further columns (intensity, ...) are dropped.

    Returns:
        tuple[Tensor, Tensor]: ``xyz`` (P, 3) with P = sum P_b (sample-major,
        each sample's order kept) and ``batch_idx`` (P,) int64, on the
        points' device.
    """
    if len(points) == 0:
        raise ValueError('pack_points needs at least one sample')
    xyz = torch.cat([p[:, :3] for p in points])
    counts = torch.tensor([p.shape[0] for p in points], device=xyz.device)
    batch_idx = torch.arange(len(points), device=xyz.device).repeat_interleave(counts)
    return xyz, batch_idx
