"""Every row of docs/downstream_recipes.md holds for the config it names (#21.6)."""
import ast
import re

import pytest

from tools.utils import load_config
from render_pretrain.paths import REPO_ROOT
from tests.downstream.test_bevfusion_configs import mmdet3d_checkout  # noqa: F401  (fixture)

DOC = REPO_ROOT / 'docs' / 'downstream_recipes.md'
CELL = re.compile(r'^`([\w.\-]+)` = `(.+)`$')
MODELS = ('BEVDet', 'CenterPoint', 'BEVFusion LiDAR-only', 'BEVFusion C+L',
          'BEV map segmentation')


def parse_doc():
    """{model: (config path, [(setting, reference, key, literal)])} from the markdown tables."""
    tables, model = {}, None
    for line in DOC.read_text().splitlines():
        if line.startswith('## '):
            model = line[3:].strip()
            tables[model] = [None, []]
        elif model and line.startswith('Config: '):
            tables[model][0] = re.search(r'`([^`]+)`', line).group(1)
        elif model and line.startswith('| ') and not line.startswith(('| setting', '| ---')):
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            assert len(cells) == 4, f'{model}: a row needs 4 cells: {line}'
            match = CELL.match(cells[2])
            assert match, f'{model}: "our config" cell is not `key` = `value`: {cells[2]}'
            tables[model][1].append((cells[0], cells[1], match.group(1),
                                     ast.literal_eval(match.group(2))))
    return tables


def lookup(cfg, key):
    node = cfg
    for part in key.split('.'):
        node = node[int(part)] if re.fullmatch(r'-?\d+', part) else node[part]
    return node


def plain(value):
    """ConfigDicts / tuples -> dicts / lists, for comparison with a literal."""
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


TABLES = parse_doc()


def test_one_table_per_downstream_model():
    assert tuple(TABLES) == MODELS
    assert all(path and rows for path, rows in TABLES.values())


@pytest.mark.parametrize('model', MODELS)
def test_every_row_holds(model, mmdet3d_checkout, monkeypatch):  # noqa: F811
    path, rows = TABLES[model]
    monkeypatch.chdir(REPO_ROOT)
    cfg = load_config(str(REPO_ROOT / path))
    wrong = []
    for setting, _, key, expected in rows:
        try:
            actual = plain(lookup(cfg, key))
        except (KeyError, IndexError, TypeError) as err:
            wrong.append(f'{setting}: {key} missing ({err!r})')
            continue
        if actual != plain(expected):
            wrong.append(f'{setting}: {key} is {actual!r}, the table says {expected!r}')
    assert not wrong, f'{model} ({path}):\n' + '\n'.join(wrong)
