"""Same seed -> byte-identical world (also with worker processes); different seed -> different."""
import hashlib
import json

import pytest

from render_pretrain.synthetic import (WorldConfig, count_frames, generate_world,
                                       load_world_config)

SMALL = dict(version='v1.0-mini', num_scenes=2, keyframes_per_scene=2, image_size=(48, 24),
             camera_sweeps=1, lidar_sweeps=1, lidar_azimuth_steps=64)


def _digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.mark.slow
def test_same_seed_is_byte_identical(tmp_path):
    a = _digest(generate_world(tmp_path / 'a', seed=7, **SMALL))
    frames = []  # progress with worker processes: every frame counted once
    b = _digest(generate_world(tmp_path / 'b', seed=7, workers=2, progress=frames.append,
                               **SMALL))
    assert sum(frames) == count_frames(WorldConfig(**SMALL))
    c = _digest(generate_world(tmp_path / 'c', seed=8, **SMALL))
    assert len(a) > 40 and a == b
    assert any(p.endswith('.jpg') for p in a) and any(p.endswith('.pcd.bin') for p in a)
    changed = [p for p in a if a[p] != c.get(p)]
    assert any(p.startswith('v1.0-mini/') for p in changed)
    assert sum(p.endswith('.jpg') or p.endswith('.pcd.bin') for p in changed) > 0
    assert load_world_config(tmp_path / 'a').seed == 7


def test_bad_input_raises_clear_errors(tmp_path):
    with pytest.raises(ValueError, match='version must be one of'):
        generate_world(tmp_path / 'x', version='v2.0', **{k: v for k, v in SMALL.items()
                                                          if k != 'version'})
    with pytest.raises(ValueError, match=r'num_scenes for v1.0-mini must be in \[1, 10\]'):
        generate_world(tmp_path / 'x', **dict(SMALL, num_scenes=11))
    with pytest.raises(ValueError, match='WorldConfig.image_size'):
        generate_world(tmp_path / 'x', **dict(SMALL, image_size=(4, 4)))
    with pytest.raises(FileNotFoundError, match='synthetic_world.json'):
        load_world_config(tmp_path)
    (tmp_path / 'synthetic_world.json').write_text(json.dumps({'version': 'v1.0-mini'}))
    with pytest.raises(ValueError, match='malformed synthetic world parameters'):
        load_world_config(tmp_path)
