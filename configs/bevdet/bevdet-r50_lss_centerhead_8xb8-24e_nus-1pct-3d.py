# Label-efficient baseline (ImageNet init, no self-supervised pre-training):
# 1 % of the nuScenes training scenes (nuscenes_infos_train_1pct.pkl).
_base_ = ['./bevdet-r50_lss_centerhead_8xb8-24e_nus-3d.py']

train_dataloader = dict(dataset=dict(ann_file='nuscenes_infos_train_1pct.pkl'))

# Warm-up over the first epoch (iterations of this subset's epoch): the official 500
# iterations would outlast the whole run on small subsets (1 %: ~5 iterations/epoch
# at 8 GPUs x 8, 24 epochs). Decay steps as the full config. The 5 % and 10 % configs
# inherit this one and change the subset.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=24, milestones=[16, 22], gamma=0.1),
]
