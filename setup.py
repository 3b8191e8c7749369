"""Install the neural-rendering pre-training plugin for mmdet3d 1.x.

Two routes (README "Install routes"):

* fresh: ``make install`` (``tools/install.sh``) builds the whole stack in a
  fixed order (torch, mmengine, mmcv with ops built against that torch,
  mmdet, mmdet3d, spconv, nuscenes-devkit) and then runs ``pip install -e .``;
* existing mmdet3d environment (GPU users' usual case): ``pip install -e .``.

``install_requires`` declares the OpenMMLab stack with the version series we
test, so pip keeps a matching installed package (it never rebuilds mmcv) and
reports a mismatch instead of running on an untested one. Two packages are
deliberately not required:

* torch: mmcv's ops are compiled against the installed torch; letting pip
  change it would break them. ``tools/install.sh`` installs it first.
* spconv: the CPU wheel is ``spconv`` and the CUDA wheels are
  ``spconv-cu1xx``, different distributions with the same import name;
  requiring ``spconv`` would put the CPU build over a GPU user's one. CPU
  users take the ``cpu`` extra (``pip install -e .[cpu]``), GPU users install
  their ``spconv-cu1xx``; ``make doctor`` (``tools/check_env.py``) checks that
  one of them imports and runs.
"""
from setuptools import find_namespace_packages, find_packages, setup

#: The OpenMMLab stack and data tools, as the version series we test (README
#: "Tested versions": mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0, mmdet3d 1.4.0,
#: nuscenes-devkit 1.2.0). mmcv is named ``mmcv`` both as the source build and
#: as OpenMMLab's prebuilt CUDA wheels, so an installed one satisfies this.
OPENMMLAB_REQUIRES = [
    'mmengine>=0.10.7,<0.11',
    'mmcv>=2.1.0,<2.2.0',
    'mmdet>=3.3.0,<3.4.0',
    'mmdet3d>=1.4.0,<1.5.0',
    'nuscenes-devkit>=1.2.0,<1.3',
]
#: The light pure-Python dependencies.
BASE_REQUIRES = ['numpy<2', 'tqdm', 'matplotlib', 'pillow']
#: spconv's CPU build (GPU users install ``spconv-cu1xx`` themselves).
SPCONV_CPU = 'spconv>=2.3.8,<2.4'

setup(
    name='render-pretrain',
    version='0.1.0',
    description='NS-MAE and MIM4D neural-rendering pre-training for mmdet3d 1.x',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    # ``projects`` is a namespace package (no __init__.py), like mmdet3d's own
    # ``projects/`` folder, so that ``projects.NSMAE`` and an mmdet3d
    # checkout's ``projects.BEVFusion`` import side by side.
    packages=(find_packages(include=['render_pretrain', 'render_pretrain.*'])
              + find_namespace_packages(include=['projects.*'],
                                        exclude=['*.configs', '*.configs.*'])),
    include_package_data=True,
    install_requires=BASE_REQUIRES + OPENMMLAB_REQUIRES,
    extras_require={
        'cpu': [SPCONV_CPU],
        'tests': ['pytest', 'pytest-timeout', 'tensorboard', 'flake8'],
    },
    license='Apache-2.0',
)
