"""ValidateBeforeTrainHook: one validation of the starting weights before any step."""
import json

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator

from projects.common import ValidateBeforeTrainHook
from tests.toy_runner import build_toy_runner


class MeanSquaredOutput(BaseMetric):
    """mean(y^2) over the validation samples (y = the toy model's output)."""

    def process(self, data_batch, data_samples):
        self.results += [float(y) ** 2 for y in torch.as_tensor(data_samples).flatten()]

    def compute_metrics(self, results):
        return dict(msq=float(np.mean(results)))


@pytest.mark.runner
def test_validation_runs_before_the_first_step_on_the_loaded_weights(tmp_path):
    gen = torch.Generator().manual_seed(1)
    val = [dict(inputs=torch.randn(2, generator=gen)) for _ in range(3)]
    weight, bias = np.array([1.5, -2.0]), 0.25
    ckpt = tmp_path / 'start.pth'
    torch.save({'state_dict': {'linear.weight': torch.tensor(weight[None], dtype=torch.float32),
                               'linear.bias': torch.tensor([bias], dtype=torch.float32)}}, ckpt)
    runner = build_toy_runner(
        tmp_path / 'run', 'validate-first', max_epochs=2, load_from=str(ckpt),
        val_dataloader=dict(dataset=val, batch_size=1, num_workers=0,
                            sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=Evaluator(MeanSquaredOutput()), val_cfg=dict(),
        custom_hooks=[ValidateBeforeTrainHook()])
    runner.train()
    rows = [json.loads(line) for line in
            next((tmp_path / 'run').glob('*/vis_data/scalars.json')).read_text().splitlines()]
    vals = [row for row in rows if 'msq' in row]
    # before training (step 0), after epoch 1 and after epoch 2
    assert [row['step'] for row in vals] == [0, 1, 2]
    first_train = next(i for i, row in enumerate(rows) if 'loss' in row)
    assert rows.index(vals[0]) < first_train
    # the start is the loaded checkpoint's: numpy on the same inputs
    expected = np.mean([(weight @ sample['inputs'].double().numpy() + bias) ** 2
                        for sample in val])
    assert vals[0]['msq'] == pytest.approx(expected, rel=1e-5)
    assert vals[-1]['msq'] != pytest.approx(expected, rel=1e-3)  # training moved the weights


def test_without_a_validation_loop_it_says_so():
    class FakeRunner:
        val_loop = None
    with pytest.raises(ValueError, match='needs a validation loop'):
        ValidateBeforeTrainHook().before_train(FakeRunner())
