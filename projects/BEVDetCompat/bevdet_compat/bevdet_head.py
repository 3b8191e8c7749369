"""BEVDet's CenterHead with official test-time Scale-NMS (per-task NMS settings)."""
from typing import List, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet3d.models.dense_heads import CenterHead
from mmdet3d.models.layers import nms_bev
from mmdet3d.registry import MODELS
from mmdet3d.structures import xywhr2xyxyr


def circle_nms_torch(centers: Tensor, scores: Tensor, thresh: float,
                     post_max_size: int) -> Tensor:
    """Greedy circle NMS on BEV centres (CenterPoint / BEVDet ``circle_nms``).

    A detection is suppressed when a kept, higher-scoring detection lies at a
    *squared* BEV distance ``<= thresh`` (the released code compares the
    squared distance with ``min_radius``).

    Args:
        centers (Tensor): (N, 2) BEV centres (x, y), metres.
        scores (Tensor): (N,) scores.
        thresh (float): Squared-distance threshold, m^2.
        post_max_size (int): Kept detections at most.

    Returns:
        Tensor: (K,) long indices into the inputs, by decreasing score.
    """
    order = scores.argsort(descending=True)
    pts = centers[order]
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=scores.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        dist2 = ((pts - pts[i]) ** 2).sum(-1)
        suppressed |= dist2 <= thresh
    return order[torch.as_tensor(keep, dtype=torch.long, device=scores.device)][:post_max_size]


def _per_task(value, task_id: int):
    """The task's entry of a per-task list, or the shared value."""
    return value[task_id] if isinstance(value, (list, tuple)) else value


@MODELS.register_module()
class BEVDetCenterHead(CenterHead):
    """mmdet3d ``CenterHead`` with official BEVDet's test-time suppression.

    Training is the stock head's. At test time each task follows official
    BEVDet (HuangJunJie2017/BEVDet ``CenterHead.get_bboxes`` /
    ``get_task_detections``, config ``bevdet-r50.py``), which mmdet3d 1.4.0's
    head lacks (one global ``nms_type`` / ``nms_thr``, no rescaling):

    - ``test_cfg.nms_type``: one of ``'rotate'`` / ``'circle'`` or one per task;
    - ``circle``: greedy NMS on centres, squared distance ``<= min_radius[task]``,
      at most ``post_max_size``;
    - ``rotate`` (Scale-NMS): box sizes (w, l, h) are multiplied by
      ``nms_rescale_factor[task]`` (a number, or one per class of the task) for
      the rotated BEV-IoU NMS only (threshold ``nms_thr[task]``,
      ``pre_max_size`` / ``post_max_size``); the kept boxes keep their
      predicted sizes; centres outside ``post_center_limit_range`` are dropped.

    Args:
        *args, **kwargs: Those of ``CenterHead``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.test_cfg or {}
        n_tasks = len(self.num_classes)
        for key in ('nms_type', 'nms_thr', 'nms_rescale_factor', 'min_radius'):
            value = cfg.get(key)
            if isinstance(value, (list, tuple)) and len(value) != n_tasks:
                raise ValueError(f'BEVDetCenterHead: test_cfg.{key} has {len(value)} entries '
                                 f'for {n_tasks} tasks: {value}')
        for task_id in range(n_tasks):
            kind = _per_task(cfg.get('nms_type', 'rotate'), task_id)
            if kind not in ('rotate', 'circle'):
                raise ValueError(f'BEVDetCenterHead: nms_type of task {task_id} must be '
                                 f"'rotate' or 'circle', got {kind!r}")
            factor = _per_task(cfg.get('nms_rescale_factor', 1.0), task_id)
            if isinstance(factor, (list, tuple)) and len(factor) != self.num_classes[task_id]:
                raise ValueError(f'BEVDetCenterHead: nms_rescale_factor of task {task_id} has '
                                 f'{len(factor)} entries for {self.num_classes[task_id]} '
                                 'classes')

    def task_nms(self, task_id: int, bboxes: Tensor, scores: Tensor,
                 labels: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Suppress one task's decoded detections of one sample.

        Args:
            task_id (int): Task index.
            bboxes (Tensor): (N, 9) decoded boxes (x, y, z_centre, w, l, h,
                yaw, vx, vy) in the lidar frame, metres / radians.
            scores (Tensor): (N,) scores.
            labels (Tensor): (N,) class index within the task.

        Returns:
            tuple[Tensor]: kept bboxes (K, 9) (predicted sizes), scores (K,),
            labels (K,).
        """
        cfg = self.test_cfg
        kind = _per_task(cfg.get('nms_type', 'rotate'), task_id)
        if kind == 'circle':
            keep = circle_nms_torch(bboxes[:, :2], scores,
                                    _per_task(cfg['min_radius'], task_id), cfg['post_max_size'])
            return bboxes[keep], scores[keep], labels[keep]
        factor = _per_task(cfg.get('nms_rescale_factor', 1.0), task_id)
        scale = bboxes.new_tensor(factor if isinstance(factor, (list, tuple)) else [factor])
        scale = scale[labels.long()] if scale.numel() > 1 else scale.expand(len(labels))
        keep_score = scores >= cfg['score_threshold'] if cfg['score_threshold'] > 0 else \
            torch.ones_like(scores, dtype=torch.bool)
        bboxes, scores, labels, scale = (t[keep_score] for t in (bboxes, scores, labels, scale))
        if len(scores) == 0:
            return bboxes, scores, labels
        for_nms = bboxes.clone()
        for_nms[:, 3:6] = for_nms[:, 3:6] * scale[:, None]
        bev = for_nms[:, [0, 1, 3, 4, 6]]  # LiDARInstance3DBoxes.bev: x, y, w (x_size), l, yaw
        keep = nms_bev(xywhr2xyxyr(bev), scores, thresh=_per_task(cfg['nms_thr'], task_id),
                       pre_max_size=cfg['pre_max_size'], post_max_size=cfg['post_max_size'])
        bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
        limit = cfg.get('post_center_limit_range')
        if limit is not None and len(limit) > 0:
            limit = bboxes.new_tensor(limit)
            inside = ((bboxes[:, :3] >= limit[:3]) & (bboxes[:, :3] <= limit[3:])).all(1)
            bboxes, scores, labels = bboxes[inside], scores[inside], labels[inside]
        return bboxes, scores, labels

    def predict_by_feat(self, preds_dicts: Tuple[List[dict]], batch_input_metas: List[dict],
                        *args, **kwargs) -> List[InstanceData]:
        """Decode every task, suppress per task (:meth:`task_nms`), merge.

        Returns:
            list[InstanceData]: Per sample ``bboxes_3d`` (box_type_3d, bottom
            centre), ``scores_3d`` and ``labels_3d`` (index in the class list).
        """
        per_task: List[List[Tuple[Tensor, Tensor, Tensor]]] = []
        for task_id, preds_dict in enumerate(preds_dicts):
            pred = preds_dict[0]
            dim = torch.exp(pred['dim']) if self.norm_bbox else pred['dim']
            decoded = self.bbox_coder.decode(
                pred['heatmap'].sigmoid(), pred['rot'][:, 0:1], pred['rot'][:, 1:2],
                pred['height'], dim, pred.get('vel'), reg=pred['reg'], task_id=task_id)
            per_task.append([self.task_nms(task_id, d['bboxes'], d['scores'], d['labels'])
                             for d in decoded])
        offsets = [sum(self.num_classes[:t]) for t in range(len(self.num_classes))]
        results = []
        for i, meta in enumerate(batch_input_metas):
            bboxes = torch.cat([task[i][0] for task in per_task])
            bboxes[:, 2] = bboxes[:, 2] - bboxes[:, 5] * 0.5  # gravity -> bottom centre
            out = InstanceData()
            out.bboxes_3d = meta['box_type_3d'](bboxes, self.bbox_coder.code_size)
            out.scores_3d = torch.cat([task[i][1] for task in per_task])
            out.labels_3d = torch.cat([task[i][2].int() + off
                                       for task, off in zip(per_task, offsets)])
            results.append(out)
        return results
