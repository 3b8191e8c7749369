"""Hook that freezes the NS-MAE LiDAR encoder after a given epoch."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet3d.registry import HOOKS


@HOOKS.register_module()
class NSMAEFreezeLiDAREncoderHook(Hook):
    """Freeze ``pts_voxel_encoder``/``pts_middle_encoder`` from an epoch on.

    At the start of every epoch ``>= freeze_epoch`` (0-based, i.e. after
    ``freeze_epoch`` finished epochs) it calls the detector's
    ``freeze_lidar_encoder`` (``requires_grad=False`` and BN in eval mode,
    kept across ``train()``). The released NS-MAE code meant to do this
    (``early_stop_epoch``) but set ``require_grad``, a no-op. Parameters
    without gradient are skipped by the optimiser, so weight decay does not
    move them either.

    Args:
        freeze_epoch (int): Number of epochs trained before freezing.
    """

    priority = 'NORMAL'

    def __init__(self, freeze_epoch: int) -> None:
        if freeze_epoch < 0:
            raise ValueError(f'freeze_epoch must be >= 0, got {freeze_epoch}')
        self.freeze_epoch = freeze_epoch

    def before_train_epoch(self, runner) -> None:
        """Freeze once ``runner.epoch`` reaches ``freeze_epoch``."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if runner.epoch >= self.freeze_epoch and not model.lidar_frozen:
            model.freeze_lidar_encoder()
