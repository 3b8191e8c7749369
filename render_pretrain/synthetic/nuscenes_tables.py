"""nuScenes table records (v1.0 schema) for the synthetic world.

Only the record layout lives here: which fields each table has and how the
token links are formed. Tokens are 32-hex-digit MD5 digests of a seeded key,
so the same seed gives the same tokens. JSON is written with sorted keys.
"""
import hashlib
import json
from pathlib import Path
from typing import Dict, List, Sequence

from .object_catalog import ATTRIBUTES, CATEGORY_INDEX, VISIBILITY_LEVELS

TABLE_NAMES = ('category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor',
               'ego_pose', 'log', 'scene', 'sample', 'sample_data', 'sample_annotation', 'map')
VERSIONS = ('v1.0-mini', 'v1.0-trainval')
# nuScenes logs: vehicle id and the location's time zone suffix.
LOCATION_VEHICLE = {
    'boston-seaport': ('n008', '-0400'),
    'singapore-onenorth': ('n015', '+0800'),
    'singapore-queenstown': ('n015', '+0800'),
    'singapore-hollandvillage': ('n015', '+0800'),
}


class TokenFactory:
    """Deterministic nuScenes-style tokens: ``md5(f'{seed}/{kind}/{key}')``."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def __call__(self, kind: str, *key) -> str:
        text = '/'.join([str(self.seed), kind] + [str(k) for k in key])
        return hashlib.md5(text.encode('utf-8')).hexdigest()


def scene_names(version: str, num_scenes: int) -> List[str]:
    """Official nuScenes scene names for a synthetic split.

    ``v1.0-mini`` draws from ``mini_train`` / ``mini_val`` (at most 8 + 2),
    ``v1.0-trainval`` from ``train`` / ``val``; about 20 % (mini) or 10 %
    (trainval), and at least one scene when ``num_scenes >= 2``, go to the
    validation split. Names are taken in list order.

    Returns:
        list[str]: ``num_scenes`` names, training scenes first.
    """
    if version not in VERSIONS:
        raise ValueError(f'version must be one of {VERSIONS}, got {version!r}')
    from nuscenes.utils import splits
    if version == 'v1.0-mini':
        train, val, val_share = splits.mini_train, splits.mini_val, 0.2
    else:
        train, val, val_share = splits.train, splits.val, 0.1
    if not 1 <= num_scenes <= len(train) + len(val):
        raise ValueError(f'num_scenes for {version} must be in [1, {len(train) + len(val)}], '
                         f'got {num_scenes}')
    num_val = 0 if num_scenes < 2 else max(1, int(round(num_scenes * val_share)))
    num_val = min(num_val, len(val))
    num_train = num_scenes - num_val
    if num_train > len(train):
        raise ValueError(f'{version} has only {len(train)} training scene names, '
                         f'{num_train} requested')
    return list(train[:num_train]) + list(val[:num_val])


def static_tables(tokens: TokenFactory, channels: Sequence[str], modalities: Sequence[str]) -> dict:
    """category, attribute, visibility and sensor tables."""
    category = [dict(token=tokens('category', name), name=name, index=index,
                     description=f'nuScenes category {name}')
                for name, index in CATEGORY_INDEX.items()]
    attribute = [dict(token=tokens('attribute', name), name=name, description=desc)
                 for name, desc in ATTRIBUTES.items()]
    visibility = [dict(token=tok, level=level, description=desc)
                  for tok, (level, desc) in VISIBILITY_LEVELS.items()]
    sensor = [dict(token=tokens('sensor', ch), channel=ch, modality=mod)
              for ch, mod in zip(channels, modalities)]
    return dict(category=category, attribute=attribute, visibility=visibility, sensor=sensor)


def link_chain(records: List[dict]) -> None:
    """Set ``prev`` / ``next`` tokens of time-ordered records in place ('' at the ends)."""
    for i, rec in enumerate(records):
        rec['prev'] = records[i - 1]['token'] if i > 0 else ''
        rec['next'] = records[i + 1]['token'] if i + 1 < len(records) else ''


def write_tables(table_dir: Path, tables: Dict[str, List[dict]]) -> None:
    """Write every table as ``<table_dir>/<name>.json`` (sorted keys, stable floats)."""
    missing = [name for name in TABLE_NAMES if name not in tables]
    if missing:
        raise ValueError(f'write_tables: missing tables {missing}')
    table_dir.mkdir(parents=True, exist_ok=True)
    for name in TABLE_NAMES:
        with open(table_dir / f'{name}.json', 'w') as f:
            json.dump(tables[name], f, sort_keys=True, indent=1)
