"""Ground-truth database (``*_dbinfos_train.pkl``) for stock LiDAR configs.

Stock mmdet3d LiDAR configs (CenterPoint, BEVFusion) paste database objects
into training scenes with ``ObjectSample``, which reads
``{data_root}/nuscenes_dbinfos_train.pkl`` and the point files under
``{data_root}/nuscenes_gt_database/``. mmdet3d writes them with
``create_groundtruth_database`` from its ``tools/dataset_converters``, which
ships inside the wheel under ``mmdet3d/.mim``; it is loaded here by file
path, because its package name (``tools``) clashes with this repository's.
"""
import importlib.util
from pathlib import Path
from typing import Optional, Union

import mmdet3d

CONVERTER = Path(mmdet3d.__file__).parent / '.mim' / 'tools' / 'dataset_converters' / \
    'create_gt_database.py'


def _load_mmdet3d_gt_database_module():
    if not CONVERTER.is_file():
        raise FileNotFoundError(f'mmdet3d ground-truth database converter not found at '
                                f'{CONVERTER} (is mmdet3d 1.4.0 installed from the wheel?)')
    spec = importlib.util.spec_from_file_location('mmdet3d_create_gt_database', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def create_nuscenes_gt_database(data_root: Union[str, Path], train_info: Union[str, Path],
                                tag: str = 'nuscenes',
                                db_info_path: Optional[Union[str, Path]] = None) -> Path:
    """Write mmdet3d's ground-truth database for a nuScenes(-format) root.

    Args:
        data_root (str | Path): nuScenes data root; the object point files go
            to ``{data_root}/{tag}_gt_database/`` (paths in the db infos are
            relative to it, as the stock configs' ``db_sampler`` expects).
        train_info (str | Path): The training info file (mmdet3d 1.x).
        tag (str): File-name prefix.
        db_info_path (str | Path, optional): Where to write the db infos
            (default ``{data_root}/{tag}_dbinfos_train.pkl``).

    Returns:
        Path: The db info file.
    """
    from mmdet3d.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    # absolute: mmengine joins a relative ann_file onto data_root
    data_root, train_info = Path(data_root).resolve(), Path(train_info).resolve()
    if not train_info.is_file():
        raise FileNotFoundError(f'training info file not found: {train_info}')
    db_info_path = Path(db_info_path) if db_info_path else data_root / f'{tag}_dbinfos_train.pkl'
    # the converter builds a dataset whose pipeline names mmdet3d transforms
    with DefaultScope.overwrite_default_scope('mmdet3d'):
        _load_mmdet3d_gt_database_module().create_groundtruth_database(
            'NuScenesDataset', str(data_root), tag, str(train_info),
            database_save_path=str(data_root / f'{tag}_gt_database'),
            db_info_save_path=str(db_info_path))
    return db_info_path
