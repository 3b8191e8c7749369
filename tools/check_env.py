"""Check the environment: versions, mmcv ops, spconv on CPU, nuscenes-devkit, registrations.

Exits non-zero if any check fails; each failure says what to do.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.utils.environment_check import run_checks  # noqa: E402

if __name__ == '__main__':
    sys.exit(1 if run_checks() else 0)
