"""Every MIM4D config loads and builds its model with the stock transfer names."""
from pathlib import Path

import pytest
from mmengine.config import Config

import projects.MIM4D.mim4d  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.utils import register_all_modules
from render_pretrain.converters.tables import MIM4D_DEPTH_NET, MIM4D_PRETRAIN_ONLY

CONFIGS = sorted((Path(__file__).resolve().parents[2] / 'projects' / 'MIM4D' / 'configs')
                 .glob('*.py'))


def test_both_sizes_exist():
    names = [p.name for p in CONFIGS]
    assert any(n.endswith('_nus-pretrain.py') for n in names)
    assert any(n.endswith('_synthetic-pretrain.py') for n in names)


@pytest.mark.parametrize('path', CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_builds_model(path):
    register_all_modules()
    cfg = Config.fromfile(str(path))
    model = MODELS.build(cfg.model)
    keys = list(model.state_dict())
    # Transferable parts carry the names of the converter tables ...
    assert any(k.startswith('img_backbone.') for k in keys)
    assert any(k.startswith('img_neck.') for k in keys)
    assert f'{MIM4D_DEPTH_NET}weight' in keys
    # ... pre-training-only parts are the ones the tables discard ...
    for prefix in ('temporal_predictor.', 'render_head.', 'img_masker.'):
        assert any(k.startswith(prefix) for k in keys)
        assert prefix in MIM4D_PRETRAIN_ONLY
    # ... and grid constants never enter a checkpoint.
    assert not any(k.endswith(('frustum', '.aabb')) for k in keys)
    # The data pipeline declares what the model reads.
    pack = cfg.train_dataloader.dataset.pipeline[-1]
    for key in ('cam2img', 'lidar2cam', 'img_aug_matrix', 'sweep2lidar', 'sweep_time_offsets',
                'sweep_source', 'num_sweeps'):
        assert key in pack.meta_keys
    # One data root: the dataset's (the sweep loader has none of its own).
    assert cfg.train_dataloader.dataset.type == 'MIM4DNuScenesDataset'
    assert not any('data_root' in step for step in cfg.train_dataloader.dataset.pipeline)


def test_tiny_config_only_shrinks_the_paper_one():
    register_all_modules()
    paper, tiny = (Config.fromfile(str(p)) for p in CONFIGS
                   if p.name.endswith(('_nus-pretrain.py', '_synthetic-pretrain.py')))
    if 'synthetic' in paper.filename:
        paper, tiny = tiny, paper
    assert tiny.model.type == paper.model.type == 'MIM4D'
    assert tiny.model.render_head.num_uniform <= paper.model.render_head.num_uniform == 72
    assert paper.model.render_head.num_importance == 24
    assert paper.model.view_transform.grid_shape == [180, 180, 5]
    assert paper.model.view_transform.point_cloud_range == [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
    assert paper.model.view_transform.out_channels == 32
    assert paper.model.img_masker.cell_size == 32
    assert paper.model.img_backbone.depth == 50 and tiny.model.img_backbone.depth == 18
    # MIM4D's deformable temporal attention at paper scale; the tiny config keeps the
    # window predictor its measured results (README) were made with.
    assert paper.model.temporal_predictor.attention == 'deformable'
    assert tiny.model.temporal_predictor.attention == 'window'


def test_paper_model_transfers_into_stock_bevdet_r50(manifests):
    from render_pretrain.converters.engine import convert_state_dict
    from render_pretrain.converters.manifest import load_manifest
    from render_pretrain.converters.tables import get_table
    register_all_modules()
    cfg = Config.fromfile(str(next(p for p in CONFIGS if p.name.endswith('_nus-pretrain.py'))))
    manifest = load_manifest(manifests / 'bevdet-r50_image-side.json')
    table = get_table('mim4d', 'bevdet')
    report = {m.name: m for m in convert_state_dict(MODELS.build(cfg.model).state_dict(), table,
                                                    manifest=manifest).report.modules}
    for name in ('img_backbone', 'img_neck'):  # the exact BEVDet-R50 image side
        assert report[name].transferred and not report[name].missing
        assert not report[name].shape_mismatches and not report[name].unexpected
    # BEVDet's 59 depth bins (the config's default): the depth net transfers too ...
    assert sorted(report['img_view_transformer'].transferred) == [
        'img_view_transformer.depthnet.bias', 'img_view_transformer.depthnet.weight']
    # ... while the paper's 64 bins are reported as a shape mismatch, not written.
    cfg.model.view_transform.dbound = [1.0, 60.0, 59.0 / 64]
    report = {m.name: m for m in convert_state_dict(MODELS.build(cfg.model).state_dict(), table,
                                                    manifest=manifest).report.modules}
    assert [k for k, _, _ in report['img_view_transformer'].shape_mismatches] == [
        'img_view_transformer.depthnet.weight', 'img_view_transformer.depthnet.bias']
