"""The files users expect (issue #24.7): LICENSE, CHANGELOG, citations, the
project READMEs' mmdet3d ``projects/example_project`` sections, and no stale
text (commands needing files outside the repository, ``$MMDET3D``).
"""
import re
import shutil
import subprocess

import pytest

from render_pretrain.paths import REPO_ROOT

PROJECT_READMES = [REPO_ROOT / 'projects' / name / 'README.md'
                   for name in ('NSMAE', 'MIM4D', 'BEVSeg', 'BEVDetCompat', 'BEVFusionCompat')]
ALL_READMES = [REPO_ROOT / 'README.md'] + PROJECT_READMES


def _code_blocks(text):
    """The fenced code blocks of a markdown text."""
    return re.findall(r'^```[^\n]*\n(.*?)^```', text, flags=re.S | re.M)


def _bibtex_entries(text):
    """(key, fields) of every ``@type{key, ...}`` entry in the text's bibtex blocks."""
    entries = []
    for block in re.findall(r'^```bibtex\n(.*?)^```', text, flags=re.S | re.M):
        for match in re.finditer(r'@(\w+)\{([^,]+),', block):
            depth, i = 1, match.end()
            while depth:  # walk to the entry's closing brace
                depth += {'{': 1, '}': -1}.get(block[i], 0)
                i += 1
            body = block[match.end():i - 1]
            fields = set(re.findall(r'(\w+)\s*=\s*\{', body))
            entries.append((match.group(2), fields))
    return entries


def test_license_is_the_apache_2_text_setup_declares():
    text = (REPO_ROOT / 'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    # every one of the nine numbered sections of the license text, in order
    heads = ['Definitions', 'Grant of Copyright License', 'Grant of Patent License',
             'Redistribution', 'Submission of Contributions', 'Trademarks',
             'Disclaimer of Warranty', 'Limitation of Liability',
             'Accepting Warranty or Additional Liability']
    positions = [text.index(f'{n}. {h}.') for n, h in enumerate(heads, 1)]
    assert positions == sorted(positions)
    assert 'END OF TERMS AND CONDITIONS' in text
    assert "license='Apache-2.0'" in (REPO_ROOT / 'setup.py').read_text()


def test_changelog_dates_are_commit_dates():
    text = (REPO_ROOT / 'CHANGELOG.md').read_text()
    dates = set(re.findall(r'^## .*?(\d{4}-\d{2}-\d{2})', text, flags=re.M))
    dates |= set(re.findall(r'^## \d{4}-\d{2}-\d{2} / (\d{4}-\d{2}-\d{2})', text, flags=re.M))
    assert len(dates) >= 3, 'the changelog groups the history by commit dates'
    if shutil.which('git') is None or not (REPO_ROOT / '.git').exists():
        pytest.skip('no git checkout: commit dates cannot be read')
    log = subprocess.run(['git', 'log', '--format=%ad', '--date=short'], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    assert dates <= set(log), f'dates not in git log: {sorted(dates - set(log))}'


def test_readme_cites_both_papers():
    text = (REPO_ROOT / 'README.md').read_text()
    entries = dict(_bibtex_entries(text))
    assert set(entries) == {'xu2023nsmae', 'zou2025mim4d'}
    for fields in entries.values():
        assert {'title', 'author', 'year'} <= set(fields)
    assert 'arXiv:2311.13750' in text and 'arXiv:2403.08760' in text


@pytest.mark.parametrize('path', PROJECT_READMES, ids=lambda p: p.parent.name)
def test_project_readme_has_example_project_sections(path):
    text = path.read_text()
    heads = re.findall(r'^## (.+)$', text, flags=re.M)
    order = [heads.index(h) for h in ('Results', 'Citation', 'Checklist')]
    assert order == sorted(order), heads
    assert _bibtex_entries(text), 'the Citation section holds a bibtex entry'
    checklist = text.split('## Checklist', 1)[1]
    assert 'Milestone 1' in checklist and 'Milestone 3' in checklist


@pytest.mark.parametrize('path', ALL_READMES, ids=lambda p: p.parent.name or 'README')
def test_readme_commands_need_nothing_outside_the_repository(path):
    for block in _code_blocks(path.read_text()):
        assert '../shared/' not in block, f'{path}: a command reads ../shared/:\n{block}'
        assert not re.search(r'\$\{?MMDET3D\b(?!_ROOT)', block), \
            f'{path}: $MMDET3D (the variable is MMDET3D_ROOT):\n{block}'


def test_tiny_centerpoint_comment_matches_create_data():
    path = (REPO_ROOT / 'configs' / 'centerpoint'
            / 'centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py')
    header = path.read_text().split('_base_', 1)[0]
    assert 'no dbinfos' not in header, 'create_data writes the world\'s dbinfos'
    assert 'nuscenes_dbinfos_train.pkl' in header
