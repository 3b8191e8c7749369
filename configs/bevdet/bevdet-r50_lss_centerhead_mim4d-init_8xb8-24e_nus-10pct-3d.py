# Label-efficient fine-tuning: 10 % of the nuScenes training scenes
# (nuscenes_infos_train_10pct.pkl from tools/create_data.py --subsets), MIM4D init.
_base_ = ['./bevdet-r50_lss_centerhead_mim4d-init_8xb8-24e_nus-3d.py']

train_dataloader = dict(dataset=dict(ann_file='nuscenes_infos_train_10pct.pkl'))

# Warm-up over the first epoch (iterations of this subset's epoch): the official 500
# iterations would outlast the whole run on small subsets (1 %: ~5 iterations/epoch
# at 8 GPUs x 8, 24 epochs). Decay steps as the full config.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=24, milestones=[16, 22], gamma=0.1),
]
