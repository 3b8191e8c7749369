"""File-level conversion: read a checkpoint, convert, stamp, write atomically."""
import os
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

from .checkpoint_io import file_sha256, read_checkpoint, write_checkpoint_atomic
from .engine import ConversionResult, convert_state_dict
from .errors import ConversionError
from .manifest import load_manifest
from .metadata import build_metadata, mark_sparse_modules
from .tables import get_table


def convert_checkpoint_file(src: Union[str, Path], dst: Union[str, Path], src_layout: str,
                            dst_layout: str, modules: Optional[Sequence[str]] = None, *,
                            strict: bool = False,
                            target_manifest: Optional[Union[str, Path,
                                                            Mapping[str, Tuple[int, ...]]]] = None,
                            manifest_name: Optional[str] = None,
                            src_spconv_layout: Optional[str] = None,
                            dst_spconv_layout: Optional[str] = None,
                            overwrite: bool = False,
                            allow_unmapped: bool = False,
                            progress: Optional[Callable[[int, int], None]] = None
                            ) -> ConversionResult:
    """Convert the checkpoint ``src`` and write ``dst``.

    The output is ``{'state_dict': ..., 'meta': ...}`` (see
    :func:`~render_pretrain.converters.metadata.build_metadata`), loadable by
    mmengine's ``load_checkpoint`` and ``load_from``. It is written to a
    temporary file renamed at the end: on any error nothing is written. The
    output is never the input (compared after resolving symlinks and
    relative paths, and by inode for hard links), and an existing output is
    replaced only with ``overwrite``.

    Args:
        src (str | Path): Source checkpoint (read weights-only, with the
            classes mmengine checkpoints hold allowed; anything else is
            refused before it runs).
        dst (str | Path): Output path.
        src_layout (str): Source layout name (see ``tables``).
        dst_layout (str): Target layout name.
        modules (Sequence[str], optional): Modules to move (default: all of
            the table's).
        strict (bool): Fail on any gap (needs ``target_manifest``).
        target_manifest (str | Path | dict, optional): JSON key -> shape
            manifest of the target model (or that mapping itself, e.g. read
            off a model built from its config), for verification.
        manifest_name (str, optional): Name of an in-memory manifest in the
            report (default: the JSON path).
        src_spconv_layout (str, optional): Declared source sparse layout.
        dst_spconv_layout (str, optional): Output sparse layout.
        overwrite (bool): Replace an existing ``dst``.
        allow_unmapped (bool): See :func:`convert_state_dict`.
        progress (callable, optional): See :func:`convert_state_dict`.

    Returns:
        ConversionResult: Converted state dict and report.

    Raises:
        ConversionError: See :func:`convert_state_dict`; also for missing,
            truncated or untrusted files, unknown layouts, ``dst`` being
            ``src`` and an existing ``dst`` without ``overwrite``.
    """
    check_output_path(src, dst, overwrite)
    table = get_table(src_layout, dst_layout)
    if target_manifest is None or isinstance(target_manifest, Mapping):
        manifest = dict(target_manifest) if target_manifest is not None else None
    else:
        manifest = load_manifest(target_manifest)
        manifest_name = manifest_name or str(target_manifest)
    state_dict, meta = read_checkpoint(src)
    result = convert_state_dict(
        state_dict, table, modules, manifest=manifest,
        manifest_name=manifest_name,
        strict=strict, src_spconv_layout=src_spconv_layout, src_meta=meta,
        dst_spconv_layout=dst_spconv_layout, source_name=str(src),
        allow_unmapped=allow_unmapped, progress=progress)
    layout = result.report.dst_spconv_layout or table.dst_spconv_layout
    checkpoint = dict(
        state_dict=mark_sparse_modules(result.state_dict, result.sparse_weight_keys, layout),
        meta=build_metadata(result.report, result.modules, file_sha256(src), Path(src).name))
    write_checkpoint_atomic(checkpoint, dst)
    return result


def check_output_path(src: Union[str, Path], dst: Union[str, Path], overwrite: bool) -> None:
    """Refuse an output that is the input, or that exists (unless ``overwrite``).

    Args:
        src (str | Path): Source checkpoint.
        dst (str | Path): Output path.
        overwrite (bool): Allow replacing an existing ``dst`` (never ``src``).

    Raises:
        ConversionError: ``dst`` resolves to ``src`` (same path after
            symlinks / ``..``, or the same inode), or exists without
            ``overwrite``.
    """
    src_path, dst_path = Path(src).expanduser(), Path(dst).expanduser()
    same = src_path.resolve() == dst_path.resolve()
    if not same and src_path.exists() and dst_path.exists():
        same = os.path.samefile(src_path, dst_path)
    if same:
        raise ConversionError(f'output {dst} is the input checkpoint {src} (same file); '
                              'choose another output path')
    if dst_path.is_dir():
        raise ConversionError(f'output {dst} is a directory; give a file path')
    if dst_path.exists() and not overwrite:
        raise ConversionError(f'output {dst} exists; pass --overwrite to replace it')
