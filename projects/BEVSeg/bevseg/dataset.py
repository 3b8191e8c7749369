"""nuScenes dataset that resolves the BEV map-label file of every sample."""
import os.path as osp
from typing import Optional

from mmdet3d.datasets import NuScenesDataset
from mmdet3d.registry import DATASETS


@DATASETS.register_module()
class BEVSegNuScenesDataset(NuScenesDataset):
    """``NuScenesDataset`` plus the absolute path of each sample's map label.

    ``tools/create_data.py`` stores ``map_seg_path`` in every info entry,
    relative to the folder of the info file (``map_seg/<token>.npz``, see
    :mod:`render_pretrain.nuscenes_infos.converter`). This dataset turns it
    into ``map_seg_file``, an absolute path, so that ``LoadBEVMapLabel``
    needs no knowledge of where the info file lives:

    - ``map_seg_root=None`` (default): relative to ``dirname(ann_file)``
      (``ann_file`` itself joined with ``data_root`` when relative), the
      convention of ``tools/create_data.py`` whatever ``--out-dir`` was;
    - ``map_seg_root='some/dir'``: relative to that folder (itself joined
      with ``data_root`` when relative), for labels moved elsewhere.

    Entries without ``map_seg_path`` get no ``map_seg_file``;
    ``LoadBEVMapLabel`` then raises an error naming the sample.

    Args:
        map_seg_root (str, optional): Base folder of ``map_seg_path``.
        **kwargs: ``NuScenesDataset`` arguments.
    """

    def __init__(self, *args, map_seg_root: Optional[str] = None, **kwargs) -> None:
        self.map_seg_root = map_seg_root
        super().__init__(*args, **kwargs)

    def _map_seg_base(self) -> str:
        if self.map_seg_root is None:
            return osp.dirname(osp.abspath(self.ann_file))
        if osp.isabs(self.map_seg_root) or not self.data_root:
            return self.map_seg_root
        return osp.join(self.data_root, self.map_seg_root)

    def parse_data_info(self, info: dict):
        """Stock parsing, plus ``map_seg_file`` (absolute) when labelled."""
        data_info = super().parse_data_info(info)
        if 'map_seg_path' in info:
            path = osp.join(self._map_seg_base(), info['map_seg_path'])
            # mv_image_based loading gives one entry per camera, frame_based one
            for entry in (data_info if isinstance(data_info, list) else [data_info]):
                entry['map_seg_file'] = path
        return data_info
