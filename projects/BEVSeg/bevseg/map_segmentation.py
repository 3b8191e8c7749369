"""The segmentation side shared by the BEV map segmentation detectors."""
from typing import Dict, List, Sequence

import torch
from torch import Tensor

from mmdet3d.structures import Det3DDataSample


class MapSegmentationMixin:
    """``loss`` / ``predict`` / ``_forward`` of a detector with a ``seg_head``.

    The detector provides :meth:`seg_bev` (its encoder's BEV map for the
    head); the head (``BEVFusionSegHead``) turns it into per-class logits
    [B, C, X, Y]. Ground truth ``gt_map_seg`` ([C, X, Y] bool, from
    ``LoadBEVMapLabel`` + ``PackBEVSegInputs``); predictions
    ``pred_map_seg`` ([C, X, Y] probabilities) for ``BEVMapSegMetric``.
    """

    def seg_bev(self, batch_inputs: dict,
                batch_data_samples: Sequence[Det3DDataSample]) -> Tensor:
        """The BEV map the segmentation head reads."""
        raise NotImplementedError

    def _stack_labels(self, batch_data_samples: Sequence[Det3DDataSample], ref: Tensor) -> Tensor:
        """Ground-truth masks [B, C, X, Y] bool of a batch, on ``ref``'s device."""
        labels = []
        for index, sample in enumerate(batch_data_samples):
            if 'gt_map_seg' not in sample:
                raise KeyError(f'{type(self).__name__}: data sample {index} has no gt_map_seg; '
                               'add LoadBEVMapLabel and pack with PackBEVSegInputs')
            labels.append(sample.gt_map_seg)
        return torch.stack(labels).to(ref.device)

    def loss(self, batch_inputs: dict,
             batch_data_samples: Sequence[Det3DDataSample], **kwargs) -> Dict[str, Tensor]:
        """Per-class segmentation losses ``loss_{class}``."""
        logits = self.seg_head(self.seg_bev(batch_inputs, batch_data_samples))
        return self.seg_head.loss_by_logits(
            logits, self._stack_labels(batch_data_samples, logits))

    def predict(self, batch_inputs: dict,
                batch_data_samples: Sequence[Det3DDataSample],
                **kwargs) -> List[Det3DDataSample]:
        """Attach ``pred_map_seg`` [C, X, Y] probabilities to every sample."""
        probs = self.seg_head.predict(self.seg_bev(batch_inputs, batch_data_samples))
        for index, sample in enumerate(batch_data_samples):
            sample.pred_map_seg = probs[index].detach()
        return list(batch_data_samples)
