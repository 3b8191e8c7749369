"""A test-only hook that saves each rank's parameters after training.

Used by the distributed-training test to compare ranks; imported through
``custom_imports`` on the command line.
"""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankParameterDumpHook(Hook):
    """Write ``<work_dir>/rank<r>_{before,after}.pth`` around training."""

    def _dump(self, runner, tag: str) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        state = {k: v.detach().cpu().clone() for k, v in model.named_parameters()}
        torch.save(state, osp.join(runner.work_dir, f'rank{get_rank()}_{tag}.pth'))

    def before_train(self, runner) -> None:
        self._dump(runner, 'before')

    def after_train(self, runner) -> None:
        self._dump(runner, 'after')
