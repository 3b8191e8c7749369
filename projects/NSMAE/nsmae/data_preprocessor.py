"""Data preprocessor that shuffles the LiDAR points before hard voxelisation."""
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor

from mmdet3d.models.data_preprocessors import Det3DDataPreprocessor
from mmdet3d.registry import MODELS
from mmdet3d.structures.det3d_data_sample import SampleList


@MODELS.register_module()
class NSMAEDataPreprocessor(Det3DDataPreprocessor):
    """``Det3DDataPreprocessor`` that shuffles each sample's points first.

    Hard voxelisation (mmcv ``Voxelization``) walks the points in order:
    once ``max_voxels`` voxels exist, points of new voxels are dropped, and
    each voxel keeps its first ``max_num_points`` points.
    ``LoadPointsFromMultiSweeps`` puts the key sweep first and the older
    sweeps after it, so without a shuffle the cap systematically drops the
    older sweeps (BEVFusion's pipeline has ``PointShuffle`` for this). The
    permutation is drawn from ``generator_fn()`` (the NSMAE detector sets it
    to its :meth:`NSMAE.generator`, the generator of all its masks), else
    from torch's global generator. Only the voxel inputs see the shuffled
    order; ``inputs['points']`` keep the pipeline's order.

    Args:
        shuffle_points (bool): Shuffle before voxelisation (default True).
        **kwargs: ``Det3DDataPreprocessor`` arguments.
    """

    def __init__(self, shuffle_points: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shuffle_points = shuffle_points
        self.generator_fn: Optional[Callable[[], torch.Generator]] = None

    def voxelize(self, points: List[Tensor],
                 data_samples: SampleList) -> Dict[str, Tensor]:
        """Shuffle every [P_b, C_pt] point tensor, then voxelise (parent)."""
        if self.shuffle_points:
            generator = self.generator_fn() if self.generator_fn is not None else None
            points = [
                p[torch.randperm(p.shape[0], generator=generator).to(p.device)]
                for p in points
            ]
        return super().voxelize(points, data_samples)
