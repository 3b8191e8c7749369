"""Install the neural-rendering pre-training plugin for mmdet3d 1.x.

The OpenMMLab stack (torch, mmcv with ops, mmdet, mmdet3d, spconv) is
installed by ``tools/install.sh`` in a fixed order because mmcv's ops are
built against the installed torch; ``install_requires`` only names the light
pure-Python dependencies.
"""
from setuptools import find_namespace_packages, find_packages, setup

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
    install_requires=['numpy<2', 'tqdm', 'matplotlib', 'pillow'],
    extras_require={'tests': ['pytest', 'pytest-timeout', 'tensorboard', 'flake8']},
    license='Apache-2.0',
)
