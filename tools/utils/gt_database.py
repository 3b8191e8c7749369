"""Ground-truth database (``*_dbinfos_train.pkl``) for stock LiDAR configs.

Stock mmdet3d LiDAR configs (CenterPoint, BEVFusion) paste database objects
into training scenes with ``ObjectSample``, which reads
``{data_root}/nuscenes_dbinfos_train.pkl`` and the point files under
``{data_root}/nuscenes_gt_database/``. mmdet3d writes them with
``create_groundtruth_database`` from its ``tools/dataset_converters``, which
ships inside the wheel under ``mmdet3d/.mim``; it is loaded here by file
path, because its package name (``tools``) clashes with this repository's.

Label-efficient runs get one database per subset
(:func:`create_subset_gt_databases`, ``{tag}_dbinfos_train_{p}pct.pkl``,
objects of the subset's key frames only); a subset config names its file in
``gt_database_subset`` and :func:`apply_subset_gt_database` (called by
``load_config``) points every ``ObjectSample`` at it.
"""
import importlib.util
import json
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Dict, Optional, Union

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


SUBSET_DB_KEY = 'gt_database_subset'
_PCT = re.compile(r'_infos_train_([0-9.]+pct)\.pkl$')


def subset_db_info_name(tag: str, percent_tag: str) -> str:
    """File name of a subset's db infos: ``{tag}_dbinfos_train_{10pct}.pkl``."""
    return f'{tag}_dbinfos_train_{percent_tag}.pkl'


def create_subset_gt_databases(db_info_path: Union[str, Path], train_info: Union[str, Path],
                               manifests: Dict[float, Union[str, Path]],
                               out_dir: Union[str, Path],
                               tag: str = 'nuscenes') -> Dict[float, Path]:
    """Write one ground-truth database per label-efficient subset.

    A subset's database keeps only the objects of that subset's key frames
    (its manifest's ``sample_tokens``), so ``ObjectSample`` in a ``p %`` run
    pastes no object of a scene the run is not allowed to see. The object
    point files are those of the full database (``{tag}_gt_database/``); only
    the db info lists are filtered. Every class key of the full database is
    kept (possibly with an empty list), as ``DataBaseSampler``'s filters
    index them by name.

    Args:
        db_info_path (str | Path): Full database's db infos (built from
            ``train_info`` by :func:`create_nuscenes_gt_database`); its
            entries' ``image_idx`` is the ``sample_idx`` of ``train_info``.
        train_info (str | Path): The full training info file.
        manifests (dict[float, str | Path]): percent -> subset manifest JSON
            (``render_pretrain.nuscenes_infos.subsets.subset_manifest``).
        out_dir (str | Path): Folder of the subset db infos.
        tag (str): File-name prefix.

    Returns:
        dict[float, Path]: percent -> ``{out_dir}/{tag}_dbinfos_train_{p}pct.pkl``.

    Raises:
        FileNotFoundError: If an input file is missing.
        ValueError: If a database entry's ``image_idx`` is not a
            ``sample_idx`` of ``train_info``.
    """
    from render_pretrain.nuscenes_infos.subsets import percent_tag
    db_info_path, train_info, out_dir = Path(db_info_path), Path(train_info), Path(out_dir)
    for path in (db_info_path, train_info, *map(Path, manifests.values())):
        if not Path(path).is_file():
            raise FileNotFoundError(f'subset ground-truth database: input not found: {path}')
    with open(db_info_path, 'rb') as f:
        db_infos = pickle.load(f)
    with open(train_info, 'rb') as f:
        token_of = {int(info['sample_idx']): info['token']
                    for info in pickle.load(f)['data_list']}
    for name, entries in db_infos.items():
        unknown = sorted({int(e['image_idx']) for e in entries} - set(token_of))
        if unknown:
            raise ValueError(f'{db_info_path}: {name!r} objects of image_idx {unknown[:5]} are '
                             f'not sample_idx of {train_info} (database built from another '
                             'info file?)')
    out = {}
    for pct, manifest_path in manifests.items():
        keep = set(json.loads(Path(manifest_path).read_text())['sample_tokens'])
        subset = {name: [e for e in entries if token_of[int(e['image_idx'])] in keep]
                  for name, entries in db_infos.items()}
        path = out_dir / subset_db_info_name(tag, percent_tag(pct))
        with open(path, 'wb') as f:
            pickle.dump(subset, f)
        empty = sorted(name for name, entries in subset.items() if not entries)
        if empty:
            warnings.warn(f'{path}: no object of class(es) {empty} in the {pct:g}% subset; '
                          'ObjectSample cannot sample them (set their sample_groups to 0)')
        out[pct] = path
    return out


def _dataset_of(loader_cfg):
    dataset = loader_cfg.dataset
    while 'dataset' in dataset:  # CBGSDataset, RepeatDataset
        dataset = dataset.dataset
    return dataset


def apply_subset_gt_database(cfg) -> None:
    """Point ``ObjectSample`` of a subset config at its subset's database.

    A config sets ``gt_database_subset = '{tag}_dbinfos_train_{p}pct.pkl'``
    (a file name beside the stock ``db_sampler.info_path``); every
    ``db_sampler`` of the training pipeline then reads that file. A
    training set drawn from a subset info file (``*_infos_train_{p}pct.pkl``)
    whose ``ObjectSample`` still reads another database is an error: it
    would paste objects of scenes outside the subset (label leakage).

    Args:
        cfg (mmengine.Config): A loaded config, modified in place.

    Raises:
        ValueError: On a subset training set without its subset database,
            or a ``gt_database_subset`` of another percentage.
    """
    loader = cfg.get('train_dataloader')
    subset_file = cfg.get(SUBSET_DB_KEY)
    if not loader:
        return
    dataset = _dataset_of(loader)
    match = _PCT.search(str(dataset.get('ann_file', '')))
    samplers = [step.db_sampler for step in dataset.get('pipeline', []) or []
                if isinstance(step, dict) and 'db_sampler' in step]
    if subset_file is not None:
        if not match or not str(subset_file).endswith(f'_{match.group(1)}.pkl'):
            raise ValueError(f'{SUBSET_DB_KEY}={subset_file!r} does not belong to the training '
                             f'set {dataset.get("ann_file")!r}')
        for sampler in samplers:
            sampler.info_path = os.path.join(os.path.dirname(str(sampler.info_path)),
                                             str(subset_file))
    elif match:
        for sampler in samplers:
            if not str(sampler.info_path).endswith(f'_{match.group(1)}.pkl'):
                raise ValueError(
                    f'training set {dataset.get("ann_file")!r} is a {match.group(1)} subset but '
                    f'ObjectSample reads {sampler.info_path!r}, a database of other scenes '
                    f'(label leakage): set {SUBSET_DB_KEY} = '
                    f'\'..._dbinfos_train_{match.group(1)}.pkl\' in the config')
