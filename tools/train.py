r"""Train a model with mmengine's Runner (mmdet3d's flags).

Examples:
    python tools/train.py projects/NSMAE/configs/CONFIG.py --work-dir work_dirs/x
    python tools/train.py \
        mmdet3d::centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py
    tools/dist_train.sh CONFIG 8 --amp
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from projects.common import (apply_common_overrides, load_config,  # noqa: E402
                             use_mmdet3d_checkout)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a 3D detector or pre-training model')
    parser.add_argument('config',
                        help='config file, or package::path (e.g. mmdet3d::centerpoint/...py)')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or from the latest one in the work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=10')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    use_mmdet3d_checkout()
    cfg = load_config(args.config, args.cfg_options)
    apply_common_overrides(cfg, args.config, args.work_dir, args.launcher, args.amp)
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
