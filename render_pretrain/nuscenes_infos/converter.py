"""Turn a nuScenes data root into mmdet3d 1.x info files (train / val / subsets).

Writes, in ``out_dir``:

- ``{tag}_infos_train.pkl`` and ``{tag}_infos_val.pkl``: ``dict(metainfo,
  data_list)`` as mmdet3d 1.4.0 writes them (info version 1.1), entries from
  :func:`.infos.build_sample_info`;
- ``map_seg/<sample token>.npz``: BEV map labels (:mod:`.map_labels`), the
  path relative to ``out_dir`` stored as ``map_seg_path``; the metainfo gets
  a ``map_seg`` dict describing the grid;
- ``{tag}_infos_train_{p}pct.pkl`` + ``.json`` manifest per subset
  (:mod:`.subsets`); ``sample_idx`` is renumbered inside each file.

Key frames are validated (with ``check_files``): finite LiDAR points, images
that decode, all six cameras present. A failing sample stops the conversion
with an error naming the file, or, with ``skip_invalid``, is left out and
counted per reason (logged, returned as ``skipped`` and stored in the
metainfo as ``skipped_samples``: token -> message).

Splits are nuScenes' official ones (``mini_train`` / ``mini_val`` for
v1.0-mini, ``train`` / ``val`` for v1.0-trainval, ``test`` for v1.0-test);
scenes in neither split are skipped with a warning.
"""
import json
import logging
import pickle
from pathlib import Path
from typing import Dict, Sequence

from ..progress import track
from .categories import NUSCENES_CLASSES
from .infos import build_sample_info, lidar_key_frame_poses
from .file_checks import InvalidSampleError
from .map_labels import BevMapRasterizer, save_map_label
from .subsets import percent_tag, select_subsets, subset_manifest
from .tables import NuScenesInfoError, get_record, load_nuscenes

logger = logging.getLogger(__name__)

MAP_SEG_DIR = 'map_seg'


def split_scene_names(version: str):
    """Official (train, val) scene names of a nuScenes version."""
    from nuscenes.utils import splits
    table = {'v1.0-mini': (splits.mini_train, splits.mini_val),
             'v1.0-trainval': (splits.train, splits.val),
             'v1.0-test': (splits.test, [])}
    if version not in table:
        raise NuScenesInfoError(f'unknown nuScenes version {version!r}; '
                                f'expected one of {sorted(table)}')
    return table[version]


def build_metainfo(version: str, ignored_names, with_map: bool,
                   rasterizer: BevMapRasterizer) -> Dict:
    """The ``metainfo`` dict of an info file."""
    categories = {name: i for i, name in enumerate(NUSCENES_CLASSES)}
    categories.update({name: -1 for name in sorted(ignored_names)})
    metainfo = dict(categories=categories, dataset='nuscenes', version=version,
                    info_version='1.1')
    if with_map:
        metainfo['map_seg'] = dict(
            classes=list(rasterizer.classes), frame='lidar',
            xbound=[-rasterizer.bound, rasterizer.bound, rasterizer.resolution],
            ybound=[-rasterizer.bound, rasterizer.bound, rasterizer.resolution],
            layout='[class, ix, iy] bool, ix along LiDAR x')
    return metainfo


def dump_infos(path: Path, metainfo: Dict, data_list) -> Path:
    """Pickle ``dict(metainfo, data_list)`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as f:
        pickle.dump(dict(metainfo=metainfo, data_list=data_list), f,
                    protocol=pickle.HIGHEST_PROTOCOL)
    return path


def create_nuscenes_infos(root_path: Path, out_dir: Path,
                          extra_tag: str = 'nuscenes',
                          version: str = 'v1.0-trainval',
                          max_lidar_sweeps: int = 10, max_cam_sweeps: int = 4,
                          subsets: Sequence[float] = (1, 5, 10, 50, 100),
                          subset_by: str = 'scene', seed: int = 0,
                          with_map: bool = True, check_files: bool = True,
                          progress: bool = True, skip_invalid: bool = False) -> Dict:
    """Write the info files of a nuScenes data root (see module docstring).

    Args:
        root_path (Path): nuScenes data root (``<version>/``, ``samples/``,
            ``sweeps/``, ``maps/``).
        out_dir (Path): output folder (usually the data root).
        extra_tag (str): file-name prefix.
        version (str): table version.
        max_lidar_sweeps (int): previous LiDAR sweeps per key frame.
        max_cam_sweeps (int): K previous frames per camera (``cam_sweeps``).
        subsets (Sequence[float]): training percentages to write.
        subset_by (str): ``'scene'`` or ``'frame'``.
        seed (int): subset seed.
        with_map (bool): rasterise BEV map labels where map data exists;
            False also works for a data root without ``maps/``.
        check_files (bool): stat every referenced sensor file; read the key
            frames' LiDAR points and images (see module docstring).
        progress (bool): show a progress bar.
        skip_invalid (bool): leave out (and count) key frames whose LiDAR
            points are not finite, whose images do not decode or that miss a
            camera, instead of failing.

    Returns:
        dict: ``train`` and ``val`` paths, ``subsets`` (percent -> path),
        ``manifests`` (percent -> path) and ``skipped`` (reason -> number of
        samples left out).

    Raises:
        NuScenesInfoError: broken tables, missing or truncated files, and
            (without ``skip_invalid``) invalid key frames.
    """
    root_path, out_dir = Path(root_path), Path(out_dir)
    nusc = load_nuscenes(root_path, version, with_map_masks=with_map)
    train_names, val_names = split_scene_names(version)
    train_names, val_names = set(train_names), set(val_names)
    rasterizer = BevMapRasterizer(root_path)
    ignored = set()
    entries = {'train': [], 'val': []}
    train_scene_of = []
    skipped = set()
    invalid: Dict[str, str] = {}
    skip_counts: Dict[str, int] = {}
    any_map = False
    for sample in track(nusc.sample, 'nuScenes infos', 'sample', disable=not progress):
        scene = get_record(nusc, 'scene', sample['scene_token'],
                           f"sample {sample['token']} scene_token")
        split = ('train' if scene['name'] in train_names
                 else 'val' if scene['name'] in val_names else None)
        if split is None:
            skipped.add(scene['name'])
            continue
        try:
            info = build_sample_info(nusc, sample, len(entries[split]), ignored,
                                     max_lidar_sweeps, max_cam_sweeps, check_files,
                                     with_annotations=version != 'v1.0-test')
        except InvalidSampleError as err:
            if not skip_invalid:
                raise NuScenesInfoError(f'{err} (pass --skip-invalid-samples to leave such '
                                        'samples out and count them)') from err
            logger.warning('skipping sample %s: %s', sample['token'], err)
            invalid[sample['token']] = str(err)
            skip_counts[err.reason] = skip_counts.get(err.reason, 0) + 1
            continue
        if with_map:
            location = get_record(nusc, 'log', scene['log_token'],
                                  f"scene {scene['name']} log_token")['location']
            lidar_sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
            poses = lidar_key_frame_poses(nusc, lidar_sd)
            label = rasterizer.rasterize(location, poses['lidar2global'])
            if label is not None:
                rel = f'{MAP_SEG_DIR}/{sample["token"]}.npz'
                save_map_label(out_dir / rel, label)
                info['map_seg_path'] = rel
                any_map = True
        entries[split].append(info)
        if split == 'train':
            train_scene_of.append(scene['name'])
    if skipped:
        logger.warning('%d scenes are in neither the train nor the val split of %s '
                       'and were skipped: %s', len(skipped), version, sorted(skipped))
    metainfo = build_metainfo(version, ignored, any_map, rasterizer)
    if invalid:
        logger.warning('left out %d invalid samples: %s', len(invalid), skip_counts)
        metainfo['skipped_samples'] = invalid
    out = dict(
        train=dump_infos(out_dir / f'{extra_tag}_infos_train.pkl', metainfo,
                         entries['train']),
        val=dump_infos(out_dir / f'{extra_tag}_infos_val.pkl', metainfo,
                       entries['val']),
        subsets={}, manifests={}, skipped=skip_counts)
    logger.info('train samples: %d, val samples: %d', len(entries['train']),
                len(entries['val']))
    tokens = [info['token'] for info in entries['train']]
    chosen = select_subsets(tokens, train_scene_of, subsets, subset_by, seed)
    for pct, indices in chosen.items():
        subset = [dict(entries['train'][i], sample_idx=new_idx)
                  for new_idx, i in enumerate(indices)]
        stem = f'{extra_tag}_infos_train_{percent_tag(pct)}'
        out['subsets'][pct] = dump_infos(out_dir / f'{stem}.pkl', metainfo, subset)
        manifest = subset_manifest(pct, subset_by, seed, tokens, train_scene_of,
                                   indices, len(set(train_scene_of)), len(tokens))
        manifest_path = out_dir / f'{stem}.json'
        manifest_path.write_text(json.dumps(manifest, indent=1))
        out['manifests'][pct] = manifest_path
    return out
