"""Label-efficient subsets written for the synthetic world."""
import json
import pickle

from nuscenes.nuscenes import NuScenes

from render_pretrain.nuscenes_infos import create_nuscenes_infos, select_subsets


def _tokens(path):
    with open(path, 'rb') as f:
        return [info['token'] for info in pickle.load(f)['data_list']]


def test_subset_files_and_manifests(synthetic_infos):
    nusc = NuScenes('v1.0-mini', str(synthetic_infos['root']), verbose=False)

    def scene_of(token):
        return nusc.get('scene', nusc.get('sample', token)['scene_token'])['name']

    train = _tokens(synthetic_infos['train'])
    val_scenes = {scene_of(t) for t in _tokens(synthetic_infos['val'])}
    train_scenes = {scene_of(t) for t in train}
    assert train_scenes and val_scenes and not train_scenes & val_scenes
    previous = set()
    for pct, path in sorted(synthetic_infos['subsets'].items()):
        manifest = json.loads(synthetic_infos['manifests'][pct].read_text())
        tokens = _tokens(path)
        scenes = {scene_of(t) for t in tokens}
        assert manifest['sample_tokens'] == tokens
        assert manifest['scene_names'] == sorted(scenes)
        assert abs(len(scenes) - pct / 100 * len(train_scenes)) <= 1
        assert scenes <= train_scenes and not scenes & val_scenes
        # whole scenes: every training frame of a chosen scene is in
        assert set(tokens) == {t for t in train if scene_of(t) in scenes}
        assert previous <= set(tokens)  # nested
        previous = set(tokens)
        with open(path, 'rb') as f:
            data = pickle.load(f)['data_list']
        assert [i['sample_idx'] for i in data] == list(range(len(data)))
    assert set(_tokens(synthetic_infos['subsets'][100])) == set(train)


def test_subsets_reproducible_per_seed(synthetic_infos, tmp_path):
    """A second conversion with the same seed writes the same subsets."""
    out = create_nuscenes_infos(synthetic_infos['root'], tmp_path, version='v1.0-mini',
                                subsets=(50,), subset_by='scene', seed=0,
                                max_lidar_sweeps=0, max_cam_sweeps=0, with_map=False,
                                check_files=False, progress=False)
    again = json.loads(out['manifests'][50].read_text())
    reference = json.loads(synthetic_infos['manifests'][50].read_text())
    assert again == reference
    # by frame: same seed -> same frames, another seed -> other frames
    train = json.loads(synthetic_infos['manifests'][100].read_text())
    nusc = NuScenes('v1.0-mini', str(synthetic_infos['root']), verbose=False)
    scenes = [nusc.get('scene', nusc.get('sample', t)['scene_token'])['name']
              for t in train['sample_tokens']]
    tokens = train['sample_tokens']
    first = select_subsets(tokens, scenes, (50,), by='frame', seed=0)[50]
    assert first == select_subsets(tokens, scenes, (50,), by='frame', seed=0)[50]
    assert first != select_subsets(tokens, scenes, (50,), by='frame', seed=1)[50]
    assert abs(len(first) - 0.5 * len(tokens)) <= 1
