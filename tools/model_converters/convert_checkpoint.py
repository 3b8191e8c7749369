r"""Convert a pre-trained checkpoint to a stock detector's key layout.

Example::

    python tools/model_converters/convert_checkpoint.py \\
        work_dirs/nsmae/epoch_20.pth checkpoints/nsmae_to_centerpoint.pth \\
        --src-layout nsmae --dst-layout mmdet3d-centerpoint \\
        --target-manifest ../shared/manifests/mmdet3d-centerpoint_voxel0075_second_secfpn.json

    # verify against the very model a config builds (file or mmdet3d::path)
    python tools/model_converters/convert_checkpoint.py SRC DST --src-layout nsmae \
        --dst-layout mmdet3d-centerpoint --modules pts_middle_encoder --strict \
        --target-config \
        configs/centerpoint/centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py

Prints a report per module (transferred / missing / unexpected / shape
mismatches). ``--strict`` fails on any gap in the requested modules. A
conversion also fails when more than 25 % of the source tensors are unknown
to the layout pair's table (a wrong ``--src-layout``; ``--allow-unmapped``
writes anyway). On any error nothing is written. The output must not be the
input, and an existing output is replaced only with ``--overwrite``. The
source is read with the weights-only unpickler (only the classes mmengine
checkpoints hold are allowed): a file that would run code is refused.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from render_pretrain.converters import (ConversionError, available_pairs,  # noqa: E402
                                        convert_checkpoint_file, get_table)
from render_pretrain.converters.engine import MAX_UNMAPPED_FRACTION  # noqa: E402

logger = logging.getLogger('convert_checkpoint')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', nargs='?', help='source checkpoint (.pth)')
    parser.add_argument('dst', nargs='?', help='output checkpoint (.pth)')
    parser.add_argument('--src-layout', help='source layout, e.g. nsmae, mim4d, mit-bevfusion')
    parser.add_argument('--dst-layout', help='target layout, e.g. mmdet3d-bevfusion, bevdet')
    parser.add_argument('--modules', help='comma-separated modules to move (default: all of '
                        'the table), e.g. img_backbone,img_neck')
    parser.add_argument('--strict', action='store_true',
                        help='fail on any missing / unexpected / mis-shaped tensor in the '
                        'requested modules (needs --target-manifest or --target-config)')
    target = parser.add_mutually_exclusive_group()
    target.add_argument('--target-manifest', help='JSON key -> shape manifest of the target '
                        'model, to verify the output')
    target.add_argument('--target-config', help='config of the target model (file or '
                        'mmdet3d::path): the model it builds gives the keys and shapes that '
                        'verify the output')
    parser.add_argument('--src-spconv-layout', choices=('spconv1', 'mmcv', 'spconv2'),
                        help='declare the source sparse-conv weight layout when the shapes '
                        'cannot tell (spconv1/mmcv: [k,k,k,in,out]; spconv2: [out,k,k,k,in])')
    parser.add_argument('--dst-spconv-layout', choices=('spconv1', 'mmcv', 'spconv2'),
                        help='sparse-conv weight layout to write (default: the target '
                        "layout's, spconv2 for mmdet3d 1.x)")
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing output file (never the input)')
    parser.add_argument('--allow-unmapped', action='store_true',
                        help=f'write even when more than {100 * MAX_UNMAPPED_FRACTION:.0f}%% '
                        'of the source tensors are unknown to the table (normally a sign of a '
                        'wrong --src-layout)')
    parser.add_argument('--list-layouts', action='store_true',
                        help='list the supported conversions and exit')
    args = parser.parse_args(argv)
    if not args.list_layouts:
        missing = [name for name in ('src', 'dst', 'src_layout', 'dst_layout')
                   if getattr(args, name) is None]
        if missing:
            parser.error(f'missing {", ".join(missing)}')
    return args


def list_layouts() -> str:
    lines = []
    for pair in available_pairs():
        table = get_table(*pair)
        lines.append(f'{pair[0]:>16} -> {pair[1]:<26} {table.description}; modules: '
                     f'{",".join(table.module_names)}')
    return '\n'.join(lines)


class TensorProgress:
    """The conversion's ``progress(done, total)``: one :class:`ProgressBar` over the tensors."""

    def __init__(self, file=None) -> None:
        self.bar, self.file = None, file

    def __call__(self, done: int, total: int) -> None:
        from render_pretrain.progress import ProgressBar
        if self.bar is None:
            self.bar = ProgressBar(total, 'convert', 'tensor', file=self.file)
        self.bar.update(done - self.bar.count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def manifest_from_config(config: str) -> dict:
    """State-dict key -> shape of the model a config builds (persistent keys only)."""
    from mmdet3d.registry import MODELS

    from tools.utils import load_config, prepare_registries, use_mmdet3d_checkout
    use_mmdet3d_checkout()  # BEVFusion targets: upstream's project from the checkout
    cfg = prepare_registries(load_config(config))
    model = MODELS.build(cfg.model)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stderr)
    args = parse_args(argv)
    if args.list_layouts:
        sys.stdout.write(list_layouts() + '\n')
        return 0
    modules = args.modules.split(',') if args.modules else None
    bar = TensorProgress()
    try:
        target = args.target_manifest
        if args.target_config:
            target = manifest_from_config(args.target_config)
        result = convert_checkpoint_file(
            args.src, args.dst, args.src_layout, args.dst_layout, modules, strict=args.strict,
            target_manifest=target, manifest_name=args.target_config,
            src_spconv_layout=args.src_spconv_layout,
            dst_spconv_layout=args.dst_spconv_layout, overwrite=args.overwrite,
            allow_unmapped=args.allow_unmapped, progress=bar)
    except ConversionError as err:
        bar.close()
        sys.stderr.write(f'error: {err}\nno output written to {args.dst}\n')
        return 1
    bar.close()
    sys.stdout.write(result.report.format() + '\n')
    logger.info('wrote %s (%d tensors)', args.dst, len(result.state_dict))
    return 0


if __name__ == '__main__':
    sys.exit(main())
