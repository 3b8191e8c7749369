"""nuScenes dataset whose samples carry the one data root of key frames and camera sweeps."""
import os.path as osp

from mmdet3d.datasets import NuScenesDataset
from mmdet3d.registry import DATASETS


@DATASETS.register_module()
class MIM4DNuScenesDataset(NuScenesDataset):
    """``NuScenesDataset`` plus its ``data_root`` in every sample.

    The key-frame images are resolved by the dataset (``data_prefix``), the
    camera sweeps of ``cam_sweeps`` hold paths relative to ``data_root``
    (:mod:`render_pretrain.nuscenes_infos.camera_sweeps`).
    ``MIM4DLoadMultiViewSweeps`` joins them with ``results['data_root']``,
    the root given here, so that key frames and sweeps always come from the
    same world (overriding the root in one place moves both).

    A local ``data_root`` that does not exist is an error naming it (with a
    file backend in ``backend_args`` the backend reports missing files).

    Args:
        data_root (str): Dataset root.
        **kwargs: ``NuScenesDataset`` arguments.
    """

    def __init__(self, data_root: str, **kwargs) -> None:
        if data_root and kwargs.get('backend_args') is None and not osp.isdir(data_root):
            raise FileNotFoundError(f'MIM4DNuScenesDataset: data_root {data_root!r} is not a '
                                    f'directory (cwd {osp.abspath(".")!r})')
        super().__init__(data_root=data_root, **kwargs)

    def parse_data_info(self, info: dict):
        """Stock parsing, plus ``data_root`` (the root camera sweeps are relative to)."""
        data_info = super().parse_data_info(info)
        # mv_image_based loading gives one entry per camera, frame_based one
        for entry in (data_info if isinstance(data_info, list) else [data_info]):
            entry['data_root'] = self.data_root
        return data_info
