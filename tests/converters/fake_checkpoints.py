"""Fake checkpoints built from the stock manifests (key -> shape).

Values are random (seeded generator) so that every conversion can be
checked element-wise; sparse-conv weights are produced in the manifest's
spconv 2.x layout and re-laid-out by independent einsums.
"""
import json
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Tuple

import torch

BEVFUSION_MANIFEST = 'mmdet3d-bevfusion_lidar-cam_voxel0075_second_secfpn.json'
CENTERPOINT_MANIFEST = 'mmdet3d-centerpoint_voxel0075_second_secfpn.json'
BEVDET_MANIFEST = 'bevdet-r50_image-side.json'
GRID = ('dx', 'bx', 'nx', 'frustum')

MIT_PREFIXES = {
    'img_backbone.': 'encoders.camera.backbone.',
    'img_neck.': 'encoders.camera.neck.',
    'view_transform.': 'encoders.camera.vtransform.',
    'pts_middle_encoder.': 'encoders.lidar.backbone.',
    'fusion_layer.': 'fuser.',
    'pts_backbone.': 'decoder.backbone.',
    'pts_neck.': 'decoder.neck.',
    'bbox_head.': 'heads.object.',
}


def read_manifest(manifests: Path, name: str) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v) for k, v in json.loads((manifests / name).read_text())['keys'].items()}


def random_tensors(shapes: Dict[str, Tuple[int, ...]], seed: int = 0,
                   dtype: torch.dtype = torch.float32) -> 'OrderedDict':
    """Key -> random tensor of that shape (int64 for num_batches_tracked)."""
    gen = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            out[key] = torch.randint(0, 1000, shape, generator=gen)
        else:
            out[key] = torch.randn(shape, generator=gen).to(dtype)
    return out


def spconv2_to_spconv1(weight: torch.Tensor) -> torch.Tensor:
    """[out, k0, k1, k2, in] -> [k0, k1, k2, in, out], by einsum."""
    return torch.einsum('oabci->abcio', weight).contiguous()


def is_grid_constant(key: str) -> bool:
    return key.rsplit('.', 1)[-1] in GRID and key.count('.') == 1


def to_mit_key(key: str) -> str:
    for ours, mit in MIT_PREFIXES.items():
        if key.startswith(ours):
            return mit + key[len(ours):]
    raise KeyError(key)
