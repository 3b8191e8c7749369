import os
import subprocess
import sys

import pytest
import torch

from render_pretrain.parallel_chunks import parallel_chunks


def _setup(seed=0):
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(10, 4, generator=gen, requires_grad=True)
    weight = torch.randn(4, 3, generator=gen, requires_grad=True)
    rows = torch.randint(0, 10, (37, ), generator=gen)
    return table, weight, rows


def _func(weight, rows):
    def func(chunk, table):
        # Gather + MLP-like op + a per-row reduction: two outputs per row.
        feats = torch.tanh(table[rows[chunk]] @ weight)
        return feats, feats.pow(2).sum(-1)
    return func


@pytest.mark.parametrize('workers', [1, 2, 3])
def test_outputs_and_gradients_equal_the_unchunked_function(workers):
    table, weight, rows = _setup()
    func = _func(weight, rows)
    feats, norms = parallel_chunks(func, 37, 8, [table], [weight], workers=workers)
    ref_feats, ref_norms = func(slice(0, 37), table)
    torch.testing.assert_close(feats, ref_feats)
    torch.testing.assert_close(norms, ref_norms)
    upstream = torch.randn(37, 3)
    loss = (feats * upstream).sum() + norms.sum()
    grads = torch.autograd.grad(loss, (table, weight))
    ref = torch.autograd.grad((ref_feats * upstream).sum() + ref_norms.sum(), (table, weight))
    for ours, theirs in zip(grads, ref):
        assert ours.abs().max() > 0
        torch.testing.assert_close(ours, theirs)
    # Only one output used downstream: the other's gradient is skipped, not zero-filled wrongly.
    feats, norms = parallel_chunks(func, 37, 8, [table], [weight], workers=workers)
    torch.testing.assert_close(torch.autograd.grad(norms.sum(), table)[0],
                               torch.autograd.grad(func(slice(0, 37), table)[1].sum(), table)[0])


def test_thread_count_is_restored_and_results_do_not_depend_on_timing():
    table, weight, rows = _setup(1)
    func = _func(weight, rows)
    threads = torch.get_num_threads()
    grads = []
    for _ in range(3):
        feats, _ = parallel_chunks(func, 37, 5, [table], [weight], workers=2)
        grads.append(torch.autograd.grad(feats.sum(), (table, weight)))
        assert torch.get_num_threads() == threads
    for other in grads[1:]:
        assert all(torch.equal(a, b) for a, b in zip(grads[0], other))


def test_undeclared_tensor_requiring_grad_raises():
    table, weight, rows = _setup(2)
    with pytest.raises(ValueError, match='neither inputs nor params'):
        parallel_chunks(_func(weight, rows), 37, 8, [table], [], workers=2)
    with pytest.raises(ValueError, match='chunk_size > 0'):
        parallel_chunks(_func(weight, rows), 37, 0, [table], [weight])


_FAULTS_SCRIPT = '''
import resource, threading, torch
from render_pretrain.parallel_chunks import tune_malloc_for_threads
tuned = tune_malloc_for_threads()
def work():  # a render chunk in miniature: 8 MB op outputs, all freed at the end
    for _ in range(10):
        keep = [torch.full((1 << 20, 2), 1.0) * i for i in range(8)]
        del keep
def run_thread():
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
run_thread()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
run_thread()
print(int(tuned), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


@pytest.mark.skipif(sys.platform != 'linux', reason='mallopt tuning is for Linux/glibc')
def test_malloc_tuning_lets_a_worker_thread_reuse_freed_memory():
    results = {}
    for setting in ('1', '0'):
        env = dict(os.environ, RENDER_PRETRAIN_TUNE_MALLOC=setting)
        out = subprocess.run([sys.executable, '-c', _FAULTS_SCRIPT], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        results[setting] = (int(out[0]), int(out[1]))
    if not results['1'][0]:
        pytest.skip('mallopt unavailable (not glibc)')
    assert results['0'][0] == 0  # the opt-out is honoured
    # 1.3 GB churned in 8 MB blocks: fresh pages for much of it by default
    # (~40k page faults), far fewer when freed memory stays in the heap.
    assert results['1'][1] * 2 < results['0'][1], results
