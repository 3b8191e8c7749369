"""Config loading and CLI overrides shared by ``tools/train.py`` and ``tools/test.py``.

The tools accept our config files and ones referenced by package, e.g.
``mmdet3d::centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py``
(the config shipped inside the installed mmdet3d wheel) or
``render_pretrain::NSMAE/nsmae_second_1xb1-2e_synthetic-pretrain.py`` (this
package's ``.mim/configs``: links to ``configs/*`` and ``projects/*/configs``).
"""
import ast
import importlib.util
import logging
import os
import os.path as osp
import sys
from typing import Any, Optional

from render_pretrain import compat  # noqa: F401  (applies the environment shims)
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.utils import get_installed_path, is_installed


def resolve_config_path(path: str) -> str:
    """Turn ``pkg::rel/path.py`` into the file inside the installed package.

    Args:
        path (str): A config file path, or ``package::relative/config.py``.

    Returns:
        str: A path to an existing config file.

    Raises:
        FileNotFoundError: If the file (or the package) does not exist.
    """
    if '::' not in path:
        if not osp.isfile(path):
            raise FileNotFoundError(f'config file not found: {path}')
        return path
    package, rel = path.split('::', 1)
    # the package Python imports (this worktree's render_pretrain, say), else
    # the installed distribution's folder
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is not None and spec.origin is not None:
        root = osp.dirname(spec.origin)
    elif is_installed(package):
        root = get_installed_path(package)
    else:
        raise FileNotFoundError(
            f'config {path!r} names package {package!r}, which is not installed '
            '(run `make install`)')
    for candidate in (osp.join(root, '.mim', 'configs', rel), osp.join(root, 'configs', rel)):
        if osp.isfile(candidate):
            # the real file: its relative _base_ and defaults resolve as from the
            # source tree (render_pretrain/.mim/configs holds links to it)
            return osp.realpath(candidate)
    raise FileNotFoundError(
        f'config {path!r}: no file {rel!r} under {root}/.mim/configs. Note that '
        'mmdet3d projects (e.g. BEVFusion) are not shipped in the wheel.')


MMDET3D_ROOT_ENV = 'MMDET3D_ROOT'
#: The checkout used when ``$MMDET3D_ROOT`` is unset: ``../mmdetection3d``
#: beside this repository, the same default as the BEVFusion configs' ``_base_``
#: (``{{$MMDET3D_ROOT:../../../mmdetection3d}}`` from ``configs/bevfusion/``).
DEFAULT_MMDET3D_ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                                os.pardir, 'mmdetection3d')


def use_mmdet3d_checkout() -> Optional[str]:
    """Put the mmdetection3d checkout on ``sys.path``: ``$MMDET3D_ROOT``, else the default.

    mmdet3d's own projects (e.g. ``projects.BEVFusion.bevfusion``, imported
    by the BEVFusion configs' ``custom_imports``) are not in the wheel; with
    the checkout on the path they import next to ours (``projects`` is a
    namespace package in both repositories). Without the variable the
    default ``../mmdetection3d`` beside this repository (``DEFAULT_MMDET3D_ROOT``)
    is used when it exists, as for the configs' ``_base_``.

    Returns:
        str or None: The checkout added (or already present), None when the
        variable is unset and there is no default checkout.

    Raises:
        FileNotFoundError: If ``$MMDET3D_ROOT`` is set but is not a directory.
    """
    root = os.environ.get(MMDET3D_ROOT_ENV)
    if not root:
        if not osp.isdir(DEFAULT_MMDET3D_ROOT):
            return None
        root = DEFAULT_MMDET3D_ROOT
    root = osp.abspath(root)
    if not osp.isdir(root):
        raise FileNotFoundError(f'{MMDET3D_ROOT_ENV}={root} is not a directory (expected an '
                                'mmdetection3d checkout)')
    if root not in sys.path:
        sys.path.append(root)
    return root


def _literal(node: ast.AST, text: str) -> Any:
    """The value of a literal expression node: constants, lists, tuples, dicts, ``dict(k=v)``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and \
            isinstance(node.operand, ast.Constant) and isinstance(node.operand.value,
                                                                  (int, float)):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List):
        return [_literal(item, text) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(item, text) for item in node.elts)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k, text): _literal(v, text) for k, v in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict'
            and not node.args and all(kw.arg is not None for kw in node.keywords)):
        return {kw.arg: _literal(kw.value, text) for kw in node.keywords}
    raise ValueError(f'not a literal ({type(node).__name__}) in {text!r}')


def parse_literal_option(value: Any, key: str = '') -> Any:
    """Turn the strings ``DictAction`` leaves for ``dict(...)`` / ``{...}`` into dicts.

    mmengine's ``DictAction`` parses ``--cfg-options k=[a,b]`` into a list but
    keeps every item it cannot parse as a number, bool or None as a string,
    so ``visualizer.vis_backends=[dict(type='LocalVisBackend')]`` becomes
    ``["dict(type='LocalVisBackend')"]`` and the Runner fails to build it.
    Strings that start with ``dict(`` or ``{`` are parsed here as Python
    literals with :mod:`ast` (constants, lists, tuples, dicts and
    ``dict(key=value)`` calls only; nothing is evaluated); lists, tuples and
    dicts are walked recursively; other values are returned unchanged.

    Args:
        value: One ``--cfg-options`` value as ``DictAction`` left it.
        key (str): Its key, named in errors.

    Returns:
        The value with such strings replaced by dicts.

    Raises:
        ValueError: If such a string is not a literal (e.g. calls another
            function), naming the key.
    """
    if isinstance(value, list):
        return [parse_literal_option(item, key) for item in value]
    if isinstance(value, tuple):
        return tuple(parse_literal_option(item, key) for item in value)
    if isinstance(value, dict):
        return {k: parse_literal_option(v, key) for k, v in value.items()}
    if isinstance(value, str) and value.strip().startswith(('dict(', '{')):
        text = value.strip()
        try:
            return _literal(ast.parse(text, mode='eval').body, text)
        except (SyntaxError, ValueError) as err:
            raise ValueError(f'--cfg-options {key}: cannot read {text!r} as a literal dict '
                             f'(constants, lists, dict(...) only): {err}') from err
    return value


def parse_literal_options(cfg_options: Optional[dict]) -> Optional[dict]:
    """:func:`parse_literal_option` applied to every ``--cfg-options`` value."""
    if not cfg_options:
        return cfg_options
    return {key: parse_literal_option(value, key) for key, value in cfg_options.items()}


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config from a file or a ``pkg::`` reference and merge overrides.

    Args:
        path (str): Config file or ``package::relative/path.py``.
        cfg_options (dict, optional): ``--cfg-options`` key/values (strings
            ``DictAction`` left for ``dict(...)`` become dicts:
            :func:`parse_literal_options`).

    Returns:
        Config: The loaded config; a subset config's ``ObjectSample`` reads
        its ``gt_database_subset`` (``gt_database.apply_subset_gt_database``).

    Raises:
        ValueError: If a subset training set would sample another database.
        FileNotFoundError: If the config, or one of its bases, does not
            exist; for a base inside an mmdetection3d checkout (the BEVFusion
            configs) the message says how to point ``$MMDET3D_ROOT`` at one.
    """
    resolved = resolve_config_path(path)
    try:
        cfg = Config.fromfile(resolved)
    except FileNotFoundError as err:
        if 'projects/BEVFusion' not in str(err):
            raise
        raise FileNotFoundError(
            f'{path} inherits a config of mmdet3d\'s BEVFusion project, which the mmdet3d '
            f'wheel does not ship: clone mmdetection3d (v1.4.0) and set '
            f'{MMDET3D_ROOT_ENV}=/path/to/mmdetection3d (default: ../mmdetection3d beside this '
            f'repository). {err}') from err
    if cfg_options:
        cfg.merge_from_dict(parse_literal_options(cfg_options))
    from .gt_database import apply_subset_gt_database
    apply_subset_gt_database(cfg)  # subset runs: ObjectSample reads the subset's database
    return cfg


def prepare_registries(cfg: Config) -> Config:
    """Make a loaded config buildable outside the Runner.

    Registers mmdet3d's modules, imports the config's ``custom_imports`` (our
    glue packages) and sets its ``default_scope``, as ``Runner`` would.

    Args:
        cfg (Config): A loaded config.

    Returns:
        Config: ``cfg``.
    """
    from mmdet3d.utils import register_all_modules
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    register_all_modules(init_default_scope=False)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    return cfg


def apply_common_overrides(cfg: Config, config_path: str, work_dir: Optional[str],
                           launcher: str, amp: bool = False) -> Config:
    """Set the work dir, the launcher and AMP the way mmdet3d's tools do.

    Args:
        cfg (Config): Loaded config, modified in place and returned.
        config_path (str): What the user passed (used for the default work dir).
        work_dir (str, optional): ``--work-dir``; else the config's, else
            ``./work_dirs/<config name>``.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
        amp (bool): Switch ``OptimWrapper`` to ``AmpOptimWrapper``.

    Returns:
        Config: ``cfg``.
    """
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.splitext(osp.basename(config_path.split('::')[-1]))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    if amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        elif wrapper != 'OptimWrapper':
            raise ValueError(
                f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper!r}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    return cfg


def mmdet3d_tool(name: str):
    """Load mmdet3d's own ``tools/{name}.py`` as a private module.

    The wheel ships the tools under ``mmdet3d/.mim/tools`` (a develop install
    links them there); an mmdetection3d checkout (``$MMDET3D_ROOT``, else
    ``../mmdetection3d``) is the fallback. Each call executes a fresh module,
    so what a caller changes on it stays private to that caller.

    Args:
        name (str): ``train`` or ``test``.

    Returns:
        module: The tool's module (``parse_args``, ``main``, ...).

    Raises:
        FileNotFoundError: If neither place has the tool.
    """
    import mmdet3d
    candidates = [osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'tools', f'{name}.py')]
    root = os.environ.get(MMDET3D_ROOT_ENV) or DEFAULT_MMDET3D_ROOT
    candidates.append(osp.join(root, 'tools', f'{name}.py'))
    for path in candidates:
        if osp.isfile(path):
            spec = importlib.util.spec_from_file_location(f'_mmdet3d_tools_{name}', path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(f"mmdet3d's tools/{name}.py not found (looked in "
                            f'{", ".join(candidates)}): reinstall mmdet3d 1.4 or set '
                            f'{MMDET3D_ROOT_ENV} to an mmdetection3d checkout')


def parse_tool_args(tool, argv: Optional[list] = None):
    """Parse ``argv`` (default ``sys.argv[1:]``) with an mmdet3d tool's own parser.

    Args:
        tool (module): From :func:`mmdet3d_tool`.
        argv (list, optional): Arguments without the program name.

    Returns:
        argparse.Namespace: The tool's arguments (it also sets ``LOCAL_RANK``
        from ``--local_rank`` when unset, as the tool does).
    """
    saved = sys.argv
    sys.argv = [saved[0] if saved else 'tool'] + list(sys.argv[1:] if argv is None else argv)
    try:
        return tool.parse_args()
    finally:
        sys.argv = saved


def run_mmdet3d_tool(name: str, argv: Optional[list] = None) -> None:
    """Run mmdet3d's ``tools/{name}.py`` with this plugin's config loading.

    mmdet3d's ``main`` does everything its flags mean (work dir, ``--amp``,
    ``--sync_bn``, ``--auto-scale-lr``, ``--resume``, ``--ceph``, ``--show``,
    ``--show-dir``, ``--score-thr``, ``--task``, ``--tta``, launcher, runner);
    only its ``Config.fromfile`` is replaced by :func:`load_config` (``pkg::``
    paths, the BEVFusion checkout message, per-subset ground-truth databases,
    ``--cfg-options`` merged before the subset check), after the mmdetection3d
    checkout is put on ``sys.path``.

    Args:
        name (str): ``train`` or ``test``.
        argv (list, optional): Arguments without the program name.
    """
    tool = mmdet3d_tool(name)
    args = parse_tool_args(tool, argv)
    use_mmdet3d_checkout()

    class PluginConfig(Config):
        """mmengine's Config whose ``fromfile`` is this plugin's loader."""

        @staticmethod
        def fromfile(filename, *unused_args, **unused_kwargs):
            # --cfg-options are merged once, here, before the subset database
            # check reads the config (the tool's own merge is skipped below).
            return load_config(filename, args.cfg_options)

    tool_parse_args = tool.parse_args

    def parse_args_options_merged():
        parsed = tool_parse_args()
        parsed.cfg_options = None
        return parsed

    tool.Config = PluginConfig
    tool.parse_args = parse_args_options_merged
    saved = sys.argv
    sys.argv = [saved[0] if saved else name] + list(sys.argv[1:] if argv is None else argv)
    try:
        tool.main()
    finally:
        sys.argv = saved
