r"""Stage-2 init of a C+L BEVFusion subset run: stage-1 LiDAR checkpoint + camera modules.

Example (1 % subset, NS-MAE init)::

    python tools/model_converters/merge_stage_checkpoints.py \\
        work_dirs/bevfusion_lidar_voxel0075_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-1pct-3d/\\
epoch_20.pth \\
        checkpoints/nsmae_swint-lss_second_to_bevfusion.pth \\
        checkpoints/bevfusion_lidar-cam_nsmae-init_1pct_stage2.pth

Takes every key of the first (LiDAR-only, trained on the subset) and the
``img_backbone`` / ``img_neck`` / ``view_transform`` keys of the second.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from render_pretrain.converters import ConversionError  # noqa: E402
from render_pretrain.converters.stage_merge import (CAMERA_MODULES,  # noqa: E402
                                                    merge_stage_checkpoints)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('lidar_stage', help='stage-1 LiDAR-only checkpoint (same subset)')
    parser.add_argument('camera_source', help='converted pre-training checkpoint (C+L layout)')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--modules', default=','.join(CAMERA_MODULES),
                        help='modules taken from camera_source')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    try:
        counts = merge_stage_checkpoints(args.lidar_stage, args.camera_source, args.dst,
                                         args.modules.split(','))
    except ConversionError as err:
        logging.error('%s', err)
        sys.exit(1)
    logging.info('%s: %s', args.dst, counts)


if __name__ == '__main__':
    main()
