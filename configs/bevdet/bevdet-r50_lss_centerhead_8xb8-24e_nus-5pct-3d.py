# Label-efficient baseline (ImageNet init, no self-supervised pre-training):
# 5 % of the nuScenes training scenes (nuscenes_infos_train_5pct.pkl), with
# the 1 % config's warm-up over the first epoch of the subset.
_base_ = ['./bevdet-r50_lss_centerhead_8xb8-24e_nus-1pct-3d.py']

train_dataloader = dict(dataset=dict(ann_file='nuscenes_infos_train_5pct.pkl'))
