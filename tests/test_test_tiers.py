"""The test tiers (tests/tiers.py): `make test` is the whole suite, `make test-fast` leaves out
the tests marked runner / subprocess / overfit / slow, and no such test enters it unmarked."""
import ast
import configparser
import re
import textwrap
from pathlib import Path

import pytest

from tests.tiers import FAST_TIER, TIER_MARKERS, TierGuard, starts_an_interpreter

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / 'tests'


def _make_rules() -> dict:
    """Makefile ``target: deps`` -> recipe lines, and ``NAME := value`` variables."""
    rules, variables, target = {}, {}, None
    for line in (REPO / 'Makefile').read_text().splitlines():
        if line.startswith('\t') and target:
            rules[target].append(line.strip())
            continue
        target = None
        var = re.match(r'^([A-Z_]+)\s*[:?]?=\s*(.*)$', line)
        rule = re.match(r'^([\w.-]+):(?!=)', line)
        if var:
            variables[var.group(1)] = var.group(2).strip()
        elif rule:
            target = rule.group(1)
            rules[target] = []
    return rules, variables


def test_make_test_is_the_whole_suite_and_test_fast_leaves_the_tiers_out():
    rules, variables = _make_rules()
    (full, ) = [line for line in rules['test'] if '-m pytest' in line]
    assert ' tests ' in full and ' -m "' not in full and '-k' not in full.split()
    (fast, ) = [line for line in rules['test-fast'] if '-m pytest' in line]
    assert ' tests ' in fast and '-m "$(FAST_TIER)"' in fast
    assert variables['FAST_TIER'] == FAST_TIER == 'not (runner or subprocess or overfit or slow)'
    assert 'test-fast' in re.search(r'^\.PHONY:(.*)$', (REPO / 'Makefile').read_text(),
                                    re.M).group(1).split()


def test_tier_markers_are_registered_and_documented():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / 'setup.cfg')
    registered = [line.split(':')[0].strip()
                  for line in cfg['tool:pytest']['markers'].strip().splitlines()]
    assert sorted(registered) == sorted(TIER_MARKERS)
    assert '--strict-markers' in cfg['tool:pytest']['addopts']
    readme = (REPO / 'README.md').read_text()
    assert 'make test-fast' in readme and 'make test' in readme
    for marker in TIER_MARKERS:
        assert f'`{marker}`' in readme, marker


# --- the static check: each test whose own module starts a subprocess or a Runner is marked ---

_POPEN = {'run', 'Popen', 'call', 'check_call', 'check_output'}
_RUNNERS = {'Runner', 'build_toy_runner'}


def _call_kind(call: ast.Call):
    """'subprocess' / 'runner' for a call that starts Python / a shell or builds a Runner."""
    func = call.func
    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and func.value.id == 'subprocess' and func.attr in _POPEN):
        first = call.args[0] if call.args else None
        if isinstance(first, (ast.List, ast.Tuple)) and first.elts:
            head = first.elts[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                return 'subprocess' if starts_an_interpreter([head.value], {}) else None
        return 'subprocess'  # sys.executable, a variable: counted
    if isinstance(func, ast.Name) and func.id in _RUNNERS:
        return 'runner'
    if (isinstance(func, ast.Attribute) and func.attr == 'from_cfg'
            and isinstance(func.value, ast.Name) and func.value.id == 'Runner'):
        return 'runner'
    return None


def _marks(decorators) -> set:
    names = set()
    for node in decorators:
        for sub in ast.walk(node):
            if (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute)
                    and sub.value.attr == 'mark'):
                names.add(sub.attr)
    return names


def unmarked_tier_tests(source: str) -> list:
    """``(test name, missing marker)`` for each test of a module that needs a tier marker.

    A test needs ``subprocess`` / ``runner`` when it, a module-level helper it calls or a
    module-level fixture it requests (transitively) starts Python / a shell or builds an
    mmengine Runner, and ``overfit`` when its name says it over-fits. Module ``pytestmark``
    and the test's own ``@pytest.mark`` decorators count.
    """
    tree = ast.parse(source)
    module_marks = set()
    functions = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = node
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'pytestmark' for t in node.targets):
            module_marks |= _marks([node.value])
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef):
                    sub.decorator_list = sub.decorator_list + node.decorator_list
                    functions[f'{node.name}.{sub.name}'] = sub

    def kinds(name, seen):
        if name in seen or name not in functions:
            return set()
        seen.add(name)
        node = functions[name]
        found = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                kind = _call_kind(sub)
                if kind:
                    found.add(kind)
                if isinstance(sub.func, ast.Name):
                    found |= kinds(sub.func.id, seen)
        for arg in node.args.args:  # fixtures defined in this module
            found |= kinds(arg.arg, seen)
        return found

    missing = []
    for name, node in functions.items():
        if not name.split('.')[-1].startswith('test_'):
            continue
        marks = module_marks | _marks(node.decorator_list)
        needed = kinds(name, set())
        if 'overfit' in name:
            needed.add('overfit')
        missing += [(name, kind) for kind in sorted(needed - marks)]
    return missing


def test_static_check_finds_unmarked_tests_through_helpers_and_fixtures():
    source = textwrap.dedent('''
        import subprocess, sys
        import pytest
        from mmengine.runner import Runner

        def _tool(*args):
            return subprocess.run([sys.executable, 'tools/train.py', *args])

        @pytest.fixture
        def trained(tmp_path):
            return Runner.from_cfg(dict(work_dir=str(tmp_path)))

        def test_through_a_helper():
            _tool('x')

        def test_through_a_fixture(trained):
            pass

        def test_git_is_cheap():
            subprocess.run(['git', 'log'])

        @pytest.mark.subprocess
        def test_marked():
            _tool('y')

        def test_overfitting_one_sample():
            pass

        class TestGroup:
            def test_in_a_class(self):
                subprocess.check_output(['bash', 'x.sh'])
        ''')
    assert unmarked_tier_tests(source) == [
        ('test_through_a_helper', 'subprocess'), ('test_through_a_fixture', 'runner'),
        ('test_overfitting_one_sample', 'overfit'), ('TestGroup.test_in_a_class', 'subprocess')]
    marked = 'import pytest\npytestmark = [pytest.mark.runner, pytest.mark.subprocess]\n' + source
    assert unmarked_tier_tests(marked) == [('test_overfitting_one_sample', 'overfit')]


def test_every_test_that_starts_python_or_a_runner_is_marked():
    checked, missing = 0, []
    for path in sorted(TESTS.rglob('*.py')):
        if path.name.startswith('test_') and path != Path(__file__):
            source = path.read_text()
            checked += bool(re.search(r'subprocess\.|Runner\b|build_toy_runner', source))
            missing += [(str(path.relative_to(REPO)), name, kind)
                        for name, kind in unmarked_tier_tests(source)]
    assert checked >= 15  # the scan sees the modules that start tools and Runners
    assert missing == []


# --- the run-time guard: a test that does a tier's work unmarked fails in every tier ---

GUARDED = '''
import subprocess
import sys

import pytest
import torch


def test_python_unmarked():
    subprocess.run([sys.executable, '-c', 'pass'], check=True)


@pytest.mark.subprocess
def test_python_marked():
    subprocess.run([sys.executable, '-c', 'pass'], check=True)


def test_git_is_not_counted():
    subprocess.run(['git', '--version'], capture_output=True)


def test_runner_unmarked(tmp_path):
    from tests.toy_runner import build_toy_runner
    build_toy_runner(tmp_path, 'tier-guard-unmarked')


def _steps(num):
    model = torch.nn.Linear(40, 40)  # 1640 parameters
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(num):
        optimizer.zero_grad()
        model(torch.ones(1, 40)).sum().backward()
        optimizer.step()


def test_eleven_steps_unmarked():
    _steps(11)


def test_ten_steps_unmarked():
    _steps(10)


@pytest.mark.overfit
def test_eleven_steps_marked():
    _steps(11)


@pytest.fixture
def launched():
    subprocess.run([sys.executable, '-c', 'pass'], check=True)


def test_fixture_unmarked(launched):
    pass
'''


def test_guard_fails_unmarked_tests_and_passes_marked_ones(pytester):
    pytester.makeini('[pytest]\nmarkers =\n' + ''.join(f'    {m}: tier\n' for m in TIER_MARKERS))
    pytester.makepyfile(test_guarded=GUARDED)
    result = pytester.runpytest_inprocess('-p', 'no:cacheprovider', '-rf',
                                          plugins=[TierGuard()])
    outcomes = {report.head_line: report.outcome for report in
                result.reprec.getreports('pytest_runtest_logreport')
                if report.when != 'teardown' and (report.failed or report.when == 'call')}
    assert outcomes == {
        'test_python_unmarked': 'failed', 'test_python_marked': 'passed',
        'test_git_is_not_counted': 'passed', 'test_runner_unmarked': 'failed',
        'test_eleven_steps_unmarked': 'failed', 'test_ten_steps_unmarked': 'passed',
        'test_eleven_steps_marked': 'passed', 'test_fixture_unmarked': 'failed'}
    text = result.stdout.str()
    for name, marker in [('python_unmarked', 'subprocess'), ('runner_unmarked', 'runner'),
                         ('eleven_steps_unmarked', 'overfit'), ('fixture_unmarked', 'subprocess')]:
        assert re.search(rf'test_{name} .*mark it @pytest.mark.{marker}', text), (name, text)


@pytest.mark.parametrize('args,kwargs,expected', [
    (['/usr/bin/python3', '-c', 'pass'], {}, True),
    (['bash', 'tools/dist_train.sh'], {}, True),
    ('python tools/train.py cfg', {'shell': True}, True),
    (['git', 'log'], {}, False),
    (['gcc', '--version'], {}, False),
    ('gcc --version', {'shell': True}, False),
])
def test_interpreter_detection(args, kwargs, expected):
    assert starts_an_interpreter(args, kwargs) is expected
