"""A real mmengine Runner around a two-parameter model, for checkpoint tests.

Its checkpoints hold everything a Runner writes (``meta`` with numpy seed and
``dataset_meta``, ``message_hub`` with ``HistoryBuffer`` objects, AdamW state,
param-scheduler state), in seconds on a CPU.
"""
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner


class ToyModel(BaseModel):
    """y = w . x + b, loss = mean(y^2)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return {'loss': (out ** 2).mean()}
        return out


def build_toy_runner(work_dir, name: str, max_epochs: int = 1, **kwargs) -> Runner:
    """A Runner that trains :class:`ToyModel` on 4 fixed samples, batch 2.

    Args:
        work_dir (str | Path): Runner work dir (checkpoints ``epoch_N.pth``).
        name (str): Experiment name (unique per Runner in one process).
        max_epochs (int): Epochs to train.
        **kwargs: Extra Runner arguments (``load_from``, ``resume``, ...).

    Returns:
        Runner: Not yet trained.
    """
    gen = torch.Generator().manual_seed(0)
    data = [dict(inputs=torch.randn(2, generator=gen)) for _ in range(4)]
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=data, batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], by_epoch=True),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), default_scope='mmengine', **kwargs)
