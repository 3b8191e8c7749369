"""Second-stage initialisation of C+L BEVFusion: LiDAR branch of stage 1 + camera modules.

BEVFusion's recipe trains C+L from a LiDAR-only checkpoint (``load_from``).
For a label-efficient run that checkpoint must come from the same subset
(official weights saw 100 % of the labels). With a pre-trained camera branch
(NS-MAE C+L, converted to the BEVFusion layout) the second stage needs both:
every key of the stage-1 LiDAR-only checkpoint, plus the camera modules of the
converted pre-training checkpoint. Its own keys of other modules (e.g. the
pre-trained, never fine-tuned LiDAR encoder) are not taken.
"""
from pathlib import Path
from typing import Dict, Sequence, Union

from .checkpoint_io import file_sha256, read_checkpoint, write_checkpoint_atomic
from .errors import ConversionError

CAMERA_MODULES = ('img_backbone', 'img_neck', 'view_transform')


def merge_stage_checkpoints(lidar_stage: Union[str, Path], camera_source: Union[str, Path],
                            dst: Union[str, Path],
                            modules: Sequence[str] = CAMERA_MODULES) -> Dict[str, int]:
    """Write ``lidar_stage``'s state dict plus ``camera_source``'s ``modules``.

    Args:
        lidar_stage (str | Path): Stage-1 LiDAR-only BEVFusion checkpoint,
            trained on the subset.
        camera_source (str | Path): Converted pre-training checkpoint in the
            BEVFusion C+L layout (``convert_checkpoint.py --dst-layout
            mmdet3d-bevfusion``).
        dst (str | Path): Output checkpoint (``load_from`` of the C+L subset
            config); written atomically.
        modules (Sequence[str]): Top-level modules taken from
            ``camera_source``.

    Returns:
        dict[str, int]: Keys taken per source: ``lidar_stage``, and one entry
        per module.

    Raises:
        ConversionError: If ``camera_source`` lacks a module, or the stage-1
            checkpoint already holds keys of one (not a LiDAR-only model).
    """
    base, _ = read_checkpoint(lidar_stage)
    donor, _ = read_checkpoint(camera_source)
    merged = dict(base)
    counts = {'lidar_stage': len(base)}
    for module in modules:
        prefix = module + '.'
        clash = [k for k in base if k.startswith(prefix)]
        if clash:
            raise ConversionError(f'{lidar_stage}: already holds {module} keys ({clash[:3]}); '
                                  'expected a LiDAR-only stage-1 checkpoint')
        taken = {k: v for k, v in donor.items() if k.startswith(prefix)}
        if not taken:
            raise ConversionError(f'{camera_source}: no {module}.* keys to take')
        merged.update(taken)
        counts[module] = len(taken)
    meta = dict(stage_merge=dict(lidar_stage=str(lidar_stage),
                                 lidar_stage_sha256=file_sha256(lidar_stage),
                                 camera_source=str(camera_source),
                                 camera_source_sha256=file_sha256(camera_source),
                                 modules=list(modules)))
    write_checkpoint_atomic(dict(state_dict=merged, meta=meta), dst)
    return counts
