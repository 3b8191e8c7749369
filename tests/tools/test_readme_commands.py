"""The README commands are exercised (issue #24.4): train / test commands parse into configs.

Convention: in the fenced code blocks of README.md and projects/*/README.md,
every ``python tools/train.py``, ``python tools/test.py`` and
``tools/dist_train.sh`` / ``tools/dist_test.sh`` command whose config is a
real path (not a placeholder such as ``CONFIG``) is *runnable*: here it is
parsed with mmdet3d's own parser (``tools/train.py``'s ``parse_args``) and its
config loaded with its ``--cfg-options`` exactly as ``tools/train.py`` does,
without training (the dry form). Every ``python tools/<script>.py`` a README
names must exist.
"""
import os
import re
import shlex

import numpy as np
import pytest
from mmengine.config import Config

from render_pretrain.paths import REPO_ROOT
from tools.utils.runner_cli import load_config, parse_literal_option, use_mmdet3d_checkout

READMES = [REPO_ROOT / 'README.md'] + sorted((REPO_ROOT / 'projects').glob('*/README.md'))


def readme_commands(text: str):
    """Shell commands of the fenced code blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r'^```[^\n]*\n(.*?)^```', text, flags=re.S | re.M):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #')[0].strip()
            if line and not line.startswith('#'):
                commands.append(line)
    return commands


def runnable_tool_commands():
    """(readme, tool, argv) of every runnable train / test command (module docstring)."""
    found = []
    for readme in READMES:
        for command in readme_commands(readme.read_text()):
            if not command.startswith(('python tools/', 'tools/')):
                continue
            words = shlex.split(command)
            if words[:2] in (['python', 'tools/train.py'], ['python', 'tools/test.py']):
                tool, argv = words[1][6:-3], words[2:]
            elif words[0] in ('tools/dist_train.sh', 'tools/dist_test.sh'):
                tool = words[0][11:-3]
                argv = words[1:2] + words[3:] if tool == 'train' else words[1:3] + words[4:]
            else:
                continue
            if not argv or not argv[0].endswith('.py'):
                continue  # a placeholder (CONFIG): the syntax line, not a command
            found.append((readme.relative_to(REPO_ROOT), tool, argv))
    return found


def test_readme_scripts_exist():
    for readme in READMES:
        for command in readme_commands(readme.read_text()):
            for script in re.findall(r'(?:^|\s)(tools/[\w/]+\.(?:py|sh))', command):
                assert (REPO_ROOT / script).is_file(), (readme, command)


COMMANDS = runnable_tool_commands()


@pytest.mark.parametrize('readme,tool,argv', COMMANDS,
                         ids=[f'{r}:{" ".join(a)[:60]}' for r, _, a in COMMANDS])
def test_readme_train_test_commands_parse_into_configs(readme, tool, argv, request,
                                                       monkeypatch):
    from tools.train import parse_args as parse_train
    from tools.utils import mmdet3d_tool, parse_tool_args
    if tool == 'train':
        args = parse_train(argv)
    else:
        args = parse_tool_args(mmdet3d_tool('test'), argv)
    config = args.config
    if config.startswith('$MMDET3D_ROOT/'):
        root = use_mmdet3d_checkout()
        if root is None:  # the shared unmodified copy (the fixture skips with a reason without it)
            monkeypatch.setenv('MMDET3D_ROOT', str(request.getfixturevalue('upstream_mmdet3d')))
            root = use_mmdet3d_checkout()
        config = os.path.join(root, config[len('$MMDET3D_ROOT/'):])
    config = os.path.join(REPO_ROOT, config)
    assert os.path.isfile(config), (readme, args.config)
    cfg = load_config(config, args.cfg_options)
    assert isinstance(cfg, Config) and 'model' in cfg


def test_mim4d_tensorboard_command_gives_a_list_of_backend_dicts(tmp_path):
    """The README's TensorBoard command: vis_backends is a list of dicts (not of strings)."""
    commands = [(r, t, a) for r, t, a in COMMANDS
                if str(r) == 'projects/MIM4D/README.md' and any('vis_backends' in w for w in a)]
    assert len(commands) == 1
    _, _, argv = commands[0]
    from tools.train import parse_args
    args = parse_args(argv)
    cfg = load_config(str(REPO_ROOT / args.config), args.cfg_options)
    assert cfg.visualizer.vis_backends == [dict(type='LocalVisBackend'),
                                           dict(type='TensorboardVisBackend')]
    # the visualizer builds and both backends write (TensorBoard is installed)
    from mmengine.registry import DefaultScope
    from mmdet3d.registry import VISUALIZERS
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    # as the Runner does: build in mmdet3d's scope (another test may have left another scope)
    with DefaultScope.overwrite_default_scope('mmdet3d'):
        visualizer = VISUALIZERS.build(dict(cfg.visualizer, name='readme_tensorboard',
                                            save_dir=str(tmp_path)))
    visualizer.add_image('figure', np.full((8, 8, 3), 200, np.uint8), step=1)
    visualizer.close()
    assert (tmp_path / 'vis_data' / 'vis_image' / 'figure_1.png').is_file()
    assert list((tmp_path / 'vis_data').glob('events.out.tfevents.*'))


def test_literal_options_are_parsed_not_evaluated():
    assert parse_literal_option(["dict(type='A', n=-2, xs=[1, 2.5], d={'k': None})", 'x']) == [
        dict(type='A', n=-2, xs=[1, 2.5], d=dict(k=None)), 'x']
    assert parse_literal_option("{'a': (1, True)}") == {'a': (1, True)}
    with pytest.raises(ValueError, match='vis'):
        parse_literal_option("dict(type=__import__('os').getcwd())", 'vis')
    with pytest.raises(ValueError, match='k'):
        parse_literal_option('dict(**x)', 'k')
