"""tools/benchmarks/model_sizing.py: parameters, FLOPs, memory and overhead ratios.

Each measuring function is checked against an independent count on a small
module: FLOPs of one convolution against the closed form 2 Cin Cout k^2 H W,
spconv FLOPs against pairs counted by brute force in numpy, the allocator
peak against a known allocation pattern, the synthetic rig against a
point projected by hand; the ratio record against its own raw timings; the
README's model table against the committed JSON lines.
"""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper

REPO = Path(__file__).resolve().parents[2]


class _Identity(torch.nn.Module):
    def forward(self, data, training=False):
        return data


class ConvModel(BaseModel):
    """A detector-shaped toy: ``data_preprocessor``, ``loss``, ``extract_feat``."""

    def __init__(self, cin=3, cout=4, k=3, frozen=False):
        super().__init__(data_preprocessor=_Identity())
        self.conv = torch.nn.Conv2d(cin, cout, k, bias=True)
        self.head = torch.nn.Linear(cout, 2)
        if frozen:
            self.head.requires_grad_(False)

    def extract_feat(self, inputs, data_samples):
        return self.conv(inputs['x'])

    def loss(self, inputs, data_samples):
        return dict(loss=self.head(self.extract_feat(inputs, data_samples).mean((2, 3))).sum())

    def forward(self, inputs, data_samples=None, mode='loss'):
        return self.loss(inputs, data_samples)


def _batch(h=10, w=12, cin=3):
    return dict(inputs=dict(x=torch.randn(1, cin, h, w)), data_samples=[])


def test_params_match_the_closed_form(sizing):
    model = ConvModel(cin=3, cout=4, k=3, frozen=True)
    total, trainable = sizing.count_params(model)
    conv, head = 3 * 4 * 3 * 3 + 4, 4 * 2 + 2
    assert (total, trainable) == (conv + head, conv)


def test_conv_flops_match_the_closed_form(sizing):
    model = ConvModel(cin=3, cout=4, k=3)
    flops = sizing.count_flops(model, _batch(10, 12))
    conv = 2 * 3 * 4 * 3 * 3 * 8 * 10  # 2 Cin Cout k^2 H_out W_out
    head = 2 * 4 * 2  # one (1, 4) x (4, 2) matmul
    assert flops['per_module'] == {'conv': conv, 'head': head, '(detector)': 0}
    assert flops['total'] == flops['dense'] == conv + head and flops['sparse'] == 0


@pytest.mark.parametrize('layer', ['subm', 'strided'])
def test_sparse_conv_flops_count_the_active_pairs(sizing, layer):
    """2 Cin Cout x (input, output) voxel pairs within the kernel, counted by brute force."""
    spconv = pytest.importorskip('spconv.pytorch')
    rng = np.random.default_rng(0)
    shape = np.array([6, 7, 5])
    coords = np.unique(rng.integers(0, shape, size=(40, 3)), axis=0)
    cin, cout = 3, 5
    if layer == 'subm':
        conv = spconv.SubMConv3d(cin, cout, 3, padding=1, indice_key='key')
        # each active voxel pairs with each active voxel in its 3x3x3 neighbourhood
        pairs = int((np.abs(coords[:, None] - coords[None]).max(-1) <= 1).sum())
    else:
        conv = spconv.SparseConv3d(cin, cout, 3, stride=2, padding=1, indice_key='key')
        # output o reads inputs 2 o - 1 .. 2 o + 1 per axis; outputs: all o in the output grid
        out_shape = (shape + 2 - 3) // 2 + 1
        grid = np.stack(np.meshgrid(*[np.arange(n) for n in out_shape], indexing='ij'),
                        -1).reshape(-1, 3)
        offset = coords[None, :, :] - (2 * grid[:, None, :] - 1)
        pairs = int(((offset >= 0) & (offset <= 2)).all(-1).sum())
    model = torch.nn.Module()
    model.conv = conv
    counter = sizing.SparseConvFlops(model)
    indices = torch.from_numpy(np.concatenate([np.zeros((len(coords), 1)), coords], 1)).int()
    model.conv(spconv.SparseConvTensor(torch.randn(len(coords), cin), indices, shape.tolist(),
                                       1))
    counter.remove()
    assert counter.flops == {'conv': 2 * cin * cout * pairs}
    assert counter.bound_layers == 0
    # count_flops: the same layer once (spconv's CPU torch.mm calls not counted twice)
    model.data_preprocessor = _Identity()
    model.loss = lambda inputs, samples: model.conv(inputs['x'])
    flops = sizing.count_flops(model, dict(inputs=dict(x=spconv.SparseConvTensor(
        torch.randn(len(coords), cin), indices, shape.tolist(), 1)), data_samples=[]))
    assert flops['total'] == flops['sparse'] == 2 * cin * cout * pairs
    assert flops['per_module'] == {'conv': 2 * cin * cout * pairs, '(detector)': 0}
    assert flops['dense'] == 0
    # spconv's native CPU algorithm: one torch.mm per kernel offset over its pairs
    assert flops['spconv_dense_seen'] == 2 * cin * cout * pairs
    assert pairs < 27 * len(coords)  # the K x N bound would be wrong here


def test_allocator_peak_of_a_known_pattern(sizing):
    def pattern():
        a = torch.empty(1_000_000, dtype=torch.float32)  # 4 MB
        b = torch.empty(500_000, dtype=torch.float32)  # 2 MB: peak 6 MB
        del a
        c = torch.empty(250_000, dtype=torch.float32)  # 1 MB more, 3 MB held
        return b, c

    peak = sizing.allocator_peak_bytes(pattern)
    assert 6_000_000 <= peak <= 6_000_000 + 4096


def test_memory_per_sample_leaves_out_the_gradients(sizing):
    model = ConvModel(cin=3, cout=4, k=3)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    peak, per_sample = sizing.memory_per_sample(model, optim, _batch())
    assert per_sample == peak - sizing.grad_bytes(model)
    assert sizing.grad_bytes(model) == 4 * (3 * 4 * 9 + 4 + 4 * 2 + 2)
    # at least the input-sized activation (the conv output, 4 x 8 x 10 floats) is held
    assert per_sample >= 4 * 4 * 8 * 10


def test_rig_projects_a_point_straight_ahead_to_the_principal_point(sizing):
    """A point 20.76 m ahead of the LiDAR at the front camera's height (by hand)."""
    cam2img, lidar2cam, aug = sizing._rig((256, 704))[0]  # CAM_FRONT
    # ego (21.7, 0, 1.51) = front camera + 20 m; LiDAR at ego (0.94, 0, 1.84), x right / y fwd
    point = np.array([0.0, 21.7 - 0.94, 1.51 - 1.84, 1.0])
    uvw = (cam2img @ lidar2cam @ point)[:3]
    assert uvw[2] == pytest.approx(20.0)  # depth along the optical axis, metres
    # BEVFusion applies img_aug_matrix to (u, v, 1) after the division by depth
    u, v, _ = aug[:3, :3] @ (uvw / uvw[2]) + aug[:3, 3]
    scale = 704 / 1600
    assert u == pytest.approx(799.5 * scale)
    assert v == pytest.approx(449.5 * scale - (round(900 * scale) - 256))


def test_lidar_sweep_hits_the_ground_and_walls(sizing):
    points = sizing.lidar_sweep(360)
    assert points.shape[1] == 5 and 0 < len(points) <= 32 * 360
    dist = np.linalg.norm(points[:, :2], axis=1)
    ground = np.isclose(points[:, 2], -1.84, atol=1e-3)
    assert ground.sum() > 0 and (dist[~ground] >= 12 - 1e-3).all()
    assert (dist[~ground] <= 40 + 1e-3).all()
    older = sizing.lidar_sweep(360, shift_forward=1.0, lag=0.1)
    assert np.allclose(older[:, 1], points[:, 1] - 1.0, atol=1e-5)
    assert np.allclose(older[:, 4], 0.1)


def test_overhead_record_is_consistent_with_its_timings(sizing, report):
    torch.manual_seed(0)
    sides = []
    for name, cout in (('big', 8), ('small', 2)):
        model = ConvModel(cin=3, cout=cout, k=3)
        optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
        batch = _batch(32, 32)
        peak, _ = sizing.memory_per_sample(model, optim, batch)
        sides.append(dict(name=name, model=model, optim=optim, batch=batch,
                          sizing=dict(peak_alloc_bytes=peak,
                                      flops_per_module=sizing.count_flops(model,
                                                                          batch)['per_module'])))
    record = sizing.compare(sides[0], sides[1], 1.1, 'a toy', iters=2, warmup=0, encoder=True)
    report.check_record(record, 'pretrain_overhead')
    walls = record['iter_s']
    assert len(walls['pre']) == len(walls['ref']) == len(walls['enc']) == 2
    median = {k: float(np.median(v)) for k, v in walls.items()}
    assert record['time_ratio'] == pytest.approx(median['pre'] / median['ref'], rel=1e-3)
    peaks = record['peak_alloc_bytes']
    assert record['mem_ratio'] == pytest.approx(peaks['big'] / peaks['small'])
    assert peaks['big'] > peaks['small']  # 8 vs 2 output channels
    worse = max(record['time_ratio'], record['mem_ratio'])
    assert record['target_met'] == (worse <= 1.1)
    assert record['mem_ratio_over_encoder'] == pytest.approx(
        peaks['big'] / record['encoder_peak_alloc_bytes'])
    assert record['time_ratio_over_encoder'] == pytest.approx(
        median['pre'] / median['enc'], rel=1e-3)
    modules = record['module_forward_s']['big']
    assert set(modules) == {'conv', 'head', '(rest)'}
    assert sum(modules.values()) == pytest.approx(walls['pre'][-1], abs=1e-3)
    assert record['flops_per_module']['big']['conv'] == 2 * 3 * 8 * 9 * 30 * 30
    assert record['flops_per_module']['big']['(detector)'] == 0


def _sizing_record(**kw):
    rec = dict(benchmark='model_sizing', title='t', workload='w',
               figures=[dict(name='params', value=1.0, unit='M')], target=None,
               target_met=None, model='NS-MAE C+L',
               config='projects/NSMAE/configs/nsmae_swint-lss_second_8xb2-cyclic-50e_nus-'
                      'pretrain.py',
               params=40_500_000, flops=1.234e12, mem_per_sample_bytes=3 * 2**30,
               est_gpu_mem_bytes=7 * 2**30, paper_batch_per_gpu=2, paper_gpus=8)
    rec.update(kw)
    return rec


def test_model_table_from_json_lines(sizing, tmp_path):
    run = dict(commit='0123456789abcdef', started='2026-12-05 20:00 UTC',
               finished='2026-12-05 20:10 UTC', machine={}, steps=[])
    stock = _sizing_record(model='stock BEVFusion C+L', config='upstream::projects/BEVFusion/'
                           'configs/bevfusion_x.py', paper_batch_per_gpu=4)
    ratio = dict(benchmark='pretrain_overhead', title='t', workload='w',
                 figures=[dict(name='worse ratio', value=1.5, unit='x')],
                 target=dict(figure='worse ratio', op='<=', limit=1.1), target_met=False,
                 model='NS-MAE C+L', reference='stock BEVFusion C+L', time_ratio=1.5,
                 mem_ratio=0.9, limit=1.1, time_ratio_over_encoder=2.0,
                 mem_ratio_over_encoder=1.5,
                 module_forward_s={'NS-MAE C+L': {'img_backbone': 12.25, 'pv_render_head': 3.0,
                                                  '(rest)': 20.0}},
                 flops_per_module={'NS-MAE C+L': {'img_backbone': 2.6e11}})
    path = tmp_path / 'bench.jsonl'
    path.write_text('\n'.join(json.dumps(x) for x in
                              [dict(run=run), _sizing_record(), stock, ratio]) + '\n')
    table = sizing.model_table(path)
    rows = [line for line in table.splitlines()
            if line.startswith('| ') and not line.startswith('| ---')]
    assert rows[0].startswith('| Config | Params (M) | FLOPs (G) | Mem/sample (MB) |')
    cells = [c.strip() for c in rows[1].strip('|').split('|')]
    assert cells == ['[NS-MAE C+L](projects/NSMAE/configs/nsmae_swint-lss_second_8xb2-cyclic-'
                     '50e_nus-pretrain.py)', '40.50', '1234.0', '3072', '7.00 (8 x 2/GPU)',
                     'not released (no nuScenes run yet)']
    assert 'upstream: mmdet3d v1.4.0 model zoo' in rows[2] and '(8 x 4/GPU)' in rows[2]
    assert rows[4].split('|')[3:8] == [' 1.50x ', ' 0.90x ', ' <= 1.1x ', ' **missed** ',
                                       ' 2.00x, 1.50x ']
    assert '- NS-MAE C+L: img_backbone 12.2 s (260 G), pv_render_head 3.0 s, (rest) 20.0 s' \
        in table.splitlines()
    readme = tmp_path / 'README.md'
    readme.write_text(f'# x\n\nbefore\n{sizing.TABLE_BEGIN}\nstale\n{sizing.TABLE_END}\nafter\n')
    sizing.write_readme_table(readme, path)
    text = readme.read_text()
    assert 'stale' not in text and text.startswith('# x\n\nbefore\n')
    assert text.endswith(f'{sizing.TABLE_END}\nafter\n') and table in text
    with pytest.raises(ValueError, match='no model-table markers'):
        sizing.write_readme_table(tmp_path / 'bench.jsonl', path)


def test_readme_model_table_is_the_rendering_of_its_json_lines(sizing):
    readme = (REPO / 'README.md').read_text()
    assert sizing.TABLE_BEGIN in readme, 'README.md has no generated model table'
    block = readme.split(sizing.TABLE_BEGIN, 1)[1].split(sizing.TABLE_END, 1)[0]
    source = re.search(r'Generated from `([^`]+)`', block).group(1)
    expected = sizing.model_table(REPO / source)
    assert sizing.TABLE_BEGIN + block + sizing.TABLE_END + '\n' == expected, \
        'README model table drifted: run tools/benchmarks/model_sizing.py --readme README.md'
    assert 'not released (no nuScenes run yet)' in block
    assert math.isfinite(len(block))


@pytest.mark.slow
def test_tiny_configs_end_to_end(sizing, report):
    """The tiny NS-MAE, MIM4D and BEVDet configs through the whole benchmark (~1 min)."""
    records = sizing.run(sizing.TINY_MODELS, sizing.TINY_RATIOS, iters=1, warmup=0,
                         azimuth_steps=128)
    by_model = {r['model']: r for r in records if r['benchmark'] == 'model_sizing'}
    assert set(by_model) == set(sizing.TINY_MODELS)
    for record in records:
        report.check_record(record, record['benchmark'])
    for name, record in by_model.items():
        cfg = sizing.load_model_config(sizing.TINY_MODELS[name][0])
        from mmdet3d.registry import MODELS
        model = MODELS.build(cfg.model)
        # parameters counted independently: the state dict minus its buffers
        buffers = {k for k, _ in model.named_buffers()}
        assert record['params'] == sum(v.numel() for k, v in model.state_dict().items()
                                       if k not in buffers)
        # every FLOP is attributed to one top-level module
        assert sum(record['flops_per_module'].values()) == record['flops'] > 0
        assert record['spconv_bound_layers'] == 0
        frozen = record['params'] - record['trainable_params']
        est = (record['paper_batch_per_gpu'] * record['mem_per_sample_bytes']
               + 16 * record['trainable_params'] + 4 * frozen)
        assert record['est_gpu_mem_bytes'] == est
        assert record['mem_per_sample_bytes'] == record['peak_alloc_bytes'] - \
            record['grad_bytes'] > 0
    nsmae = by_model['NS-MAE C+L']
    assert nsmae['flops_sparse'] > 0 and nsmae['points'] > 0
    # spconv's own CPU matrix products, seen by FlopCounterMode, equal the pair count
    assert nsmae['flops_spconv_seen_by_flop_counter'] == nsmae['flops_sparse']
    assert by_model['MIM4D']['views'] == 6 * 3 and by_model['BEVDet-R18']['points'] == 0
    (ratio, ) = [r for r in records if r['benchmark'] == 'pretrain_overhead']
    assert ratio['model'] == 'MIM4D' and ratio['reference'] == 'BEVDet-R18'
    assert ratio['mem_ratio'] == pytest.approx(by_model['MIM4D']['peak_alloc_bytes']
                                               / by_model['BEVDet-R18']['peak_alloc_bytes'])
    assert ratio['time_ratio'] == pytest.approx(ratio['iter_s']['pre'][0]
                                                / ratio['iter_s']['ref'][0], rel=1e-3)
