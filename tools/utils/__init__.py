"""Tool library of the command-line tools: config loading, mmdet3d tool delegation,
the environment check and the ground-truth databases.

Not a glue package: nothing here is registered in mmdet3d's registries, and
nothing under ``projects/`` or ``render_pretrain/`` imports it.
"""
from .runner_cli import (apply_common_overrides, load_config, mmdet3d_tool, parse_tool_args,
                         prepare_registries, run_mmdet3d_tool, use_mmdet3d_checkout)

__all__ = ['load_config', 'apply_common_overrides', 'prepare_registries', 'use_mmdet3d_checkout',
           'mmdet3d_tool', 'parse_tool_args', 'run_mmdet3d_tool']
