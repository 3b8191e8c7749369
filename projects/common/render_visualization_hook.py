"""Base of the hooks that save renderings next to their targets (PNG + visualizer backends)."""
import os.path as osp
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from render_pretrain.visualization.render_images import enlarge_to_min_height


class RenderVisualizationHook(Hook):
    """Save the ``render_outputs`` of predicted samples as pictures.

    For each visualised sample, :meth:`images_of` turns its
    ``render_outputs`` into named H x W x 3 uint8 images, written as
    ``{out_dir}/{tag}_{step}_{index}_{name}.png`` and passed to the runner's
    visualizer (``Visualizer.add_image``), i.e. to every enabled backend
    (local, TensorBoard, W&B). During training the batch is rendered with
    ``model.test_step`` in eval mode without gradients, then the model goes
    back to train mode; at validation the first batch is saved.

    Subclasses set ``folder`` and implement :meth:`images_of`.

    Args:
        interval (int): Training iterations between two visualisations (0
            disables the training-time visualisation).
        max_samples (int): Samples visualised per batch.
        out_dir (str, optional): Output folder (default
            ``{work_dir}/{folder}``).
        min_height (int): Images lower than this are enlarged by an integer
            nearest-neighbour factor.
    """

    priority = 'LOW'
    folder = 'render_vis'

    def __init__(self,
                 interval: int = 1000,
                 max_samples: int = 1,
                 out_dir: Optional[str] = None,
                 min_height: int = 128) -> None:
        self.interval = int(interval)
        self.max_samples = int(max_samples)
        self.out_dir = out_dir
        self.min_height = int(min_height)

    def images_of(self, outputs) -> Dict[str, np.ndarray]:
        """Named H x W x 3 uint8 images of one sample's ``render_outputs``."""
        raise NotImplementedError

    def _save(self, runner, samples: Sequence, tag: str, step: int) -> None:
        out_dir = self.out_dir or osp.join(runner.work_dir, self.folder)
        for index, sample in enumerate(samples[:self.max_samples]):
            if 'render_outputs' not in sample:
                raise KeyError(f'{type(self).__name__} needs data samples with '
                               '"render_outputs" (the pre-training model\'s predict)')
            for name, image in self.images_of(sample.render_outputs).items():
                image = enlarge_to_min_height(image, self.min_height)
                mmcv.imwrite(image[..., ::-1],
                             osp.join(out_dir, f'{tag}_{step:07d}_{index}_{name}.png'))
                runner.visualizer.add_image(f'{tag}_{index}_{name}', image, step)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Render the current batch every ``interval`` iterations."""
        if self.interval <= 0 or not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model
        inner = model.module if is_model_wrapper(model) else model
        was_training = inner.training
        inner.eval()
        with torch.no_grad():
            samples = model.test_step(data_batch)
        inner.train(was_training)
        self._save(runner, samples, 'train', runner.iter + 1)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Save the renderings of the first validation batch."""
        if batch_idx == 0 and outputs:
            self._save(runner, outputs, 'val', runner.iter)
