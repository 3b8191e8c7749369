r"""Train a model: mmdet3d 1.4's ``tools/train.py`` with this plugin's config loading.

Every flag is mmdet3d's own, parsed by mmdet3d's parser and applied by its
``main`` (``--work-dir``, ``--amp``, ``--sync_bn``, ``--auto-scale-lr``,
``--resume``, ``--ceph``, ``--cfg-options``, ``--launcher``, ``--local_rank``);
see :func:`tools.utils.run_mmdet3d_tool`. CONFIG is a file or
``package::path``.

Examples:
    python tools/train.py projects/NSMAE/configs/CONFIG.py --work-dir work_dirs/x
    python tools/train.py \
        mmdet3d::centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py
    tools/dist_train.sh CONFIG 8 --amp --sync_bn torch
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.utils import mmdet3d_tool, parse_tool_args, run_mmdet3d_tool  # noqa: E402


def parse_args(argv=None):
    """mmdet3d's ``tools/train.py`` arguments, parsed by its own parser."""
    return parse_tool_args(mmdet3d_tool('train'), argv)


def main(argv=None):
    run_mmdet3d_tool('train', argv)


if __name__ == '__main__':
    main()
