r"""Test (and evaluate) a checkpoint: mmdet3d 1.4's ``tools/test.py`` with this
plugin's config loading.

Every flag is mmdet3d's own, parsed by mmdet3d's parser and applied by its
``main`` (``--work-dir``, ``--show``, ``--show-dir``, ``--score-thr``,
``--task``, ``--wait-time``, ``--tta``, ``--ceph``, ``--cfg-options``,
``--launcher``, ``--local_rank``); see :func:`tools.utils.run_mmdet3d_tool`.

Examples:
    python tools/test.py CONFIG CHECKPOINT --work-dir work_dirs/eval
    python tools/test.py CONFIG CHECKPOINT --show-dir vis --task lidar_det --score-thr 0.3
    tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.utils import mmdet3d_tool, parse_tool_args, run_mmdet3d_tool  # noqa: E402


def parse_args(argv=None):
    """mmdet3d's ``tools/test.py`` arguments, parsed by its own parser."""
    return parse_tool_args(mmdet3d_tool('test'), argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    run_mmdet3d_tool('test', argv)


if __name__ == '__main__':
    main()
