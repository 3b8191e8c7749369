"""Check the environment: versions, mmcv ops, spconv on CPU, nuscenes-devkit, registrations,
and the state of every compat shim (applied / not needed (reason) / opted out).

Exits non-zero if any check fails; each failure says what to do. ``--json`` writes the
same report as one JSON object (``checks``, ``shims``, ``failures``).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.utils.environment_check import run_checks  # noqa: E402

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true', help='write the report as JSON')
    args = parser.parse_args()
    sys.exit(1 if run_checks(as_json=args.json) else 0)
