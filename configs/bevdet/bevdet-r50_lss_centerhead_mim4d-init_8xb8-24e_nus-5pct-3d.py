# Label-efficient fine-tuning: 5 % of the nuScenes training scenes
# (nuscenes_infos_train_5pct.pkl from tools/create_data.py --subsets), MIM4D init.
_base_ = ['./bevdet-r50_lss_centerhead_mim4d-init_8xb8-24e_nus-3d.py']

train_dataloader = dict(dataset=dict(ann_file='nuscenes_infos_train_5pct.pkl'))
