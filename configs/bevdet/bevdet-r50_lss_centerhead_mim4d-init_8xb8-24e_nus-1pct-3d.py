# Label-efficient fine-tuning: 1 % of the nuScenes training scenes
# (nuscenes_infos_train_1pct.pkl from tools/create_data.py --subsets), MIM4D init:
# the 1 % baseline (subset, one-epoch warm-up) with the init of
# bevdet-r50_lss_centerhead_mim4d-init_8xb8-24e_nus-3d.py.
_base_ = ['./bevdet-r50_lss_centerhead_8xb8-24e_nus-1pct-3d.py']

model = dict(img_backbone=dict(init_cfg=None))
load_from = 'checkpoints/mim4d_r50_to_bevdet.pth'
