"""Validation before the first training step (the "start" of a learning curve)."""
from mmengine.hooks import Hook

from mmdet3d.registry import HOOKS


@HOOKS.register_module()
class ValidateBeforeTrainHook(Hook):
    """Run the validation loop once in ``before_train``, before any step.

    mmengine's ``EpochBasedTrainLoop`` validates only after an epoch
    (``val_begin`` >= 1), so a metric of the initial weights needs this
    hook. The logger writes the result to ``scalars.json`` with
    ``step`` 0 (``runner.epoch`` before the first epoch); the following
    validations carry their epoch. Placed after ``load_from`` / resume
    (``before_train`` runs after the checkpoint is loaded), so the start
    is that of the weights training begins from. On a resumed run (epoch
    > 0) it does nothing.
    """

    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        if runner.val_loop is None:
            raise ValueError('ValidateBeforeTrainHook needs a validation loop '
                             '(val_dataloader, val_cfg and val_evaluator)')
        if runner.train_loop.epoch == 0 and runner.train_loop.iter == 0:
            runner.val_loop.run()
