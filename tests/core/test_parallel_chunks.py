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
