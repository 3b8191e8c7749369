"""MIM4D pre-training detector: masked multi-view video, temporal prediction, NeuS rendering."""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import Tensor

from mmdet3d.models import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from render_pretrain.camera_geometry import (compose_lidar2img, intrinsics_to_4x4,
                                             render_depth_map_from_points)
from render_pretrain.image_normalization import images_to_unit_range, preprocessor_normalization
from render_pretrain.sample_batching import pack_points, stack_sample_meta
from render_pretrain.seeding import KeyedTorchGenerators
from render_pretrain.volume_warping import warp_volume

_REQUIRED_META = ('cam2img', 'lidar2cam', 'img_aug_matrix', 'sweep2lidar', 'sweep_time_offsets',
                  'sweep_source', 'num_sweeps')


@MODELS.register_module()
class MIM4D(Base3DDetector):
    """MIM4D: masked modelling of multi-view video, rendered with a NeuS field.

    Per sample the inputs are S camera sweeps x N_cam images
    (``MIM4DLoadMultiViewSweeps``, sweep-major), key-frame LiDAR points and
    the per-view matrices. One forward pass:

    1. spatial masking of every image (``img_masker``, learnable token at the
       normalised input);
    2. per frame, one frame at a time (training-mode BatchNorm statistics
       never mix frames): ``img_backbone`` -> ``img_neck`` ->
       ``view_transform`` (depth net, LSS lifting into a voxel volume in the
       frame's OWN LiDAR frame, reduction to 32 channels); a context view
       that holds a copy of a target frame's image (scene starts, see
       ``sweep_source``) is fully masked before the backbone;
    3. temporal masking: each target frame (``target_frames``, default the
       key frame 0; with ``bitemporal`` in training the key frame and one
       random other sweep, as released) is predicted from the other frames:
       their volumes are warped into it by their metric ego-motion
       (``sweep2lidar``, from each camera sweep's own ego pose) and
       ``temporal_predictor`` predicts its volume;
    4. ``render_head`` renders the target frame's cameras from the predicted
       volume (LiDAR rays + pixel rays below the sky); the key-frame LiDAR
       points are moved into the target frame by the same ego-motion (exact
       for the static world); the colour target of a ray is its nearest
       pixel of the (unmasked) target image;
    5. with ``direct_loss_weight > 0`` the same rays are also rendered from
       the target frame's DIRECT volume, lifted from its own masked images
       (``loss_*_direct``, as the released ``rgb_loss`` / ``depth_loss``
       next to the predicted volume's ``*_adj`` terms). A target frame that
       is not among the context frames (a single withheld target) is
       encoded in its own backbone pass for it, so its images never reach
       the context frames or the predicted volume.

    Losses are averaged over the target frames. Transferable parts keep the
    stock names ``img_backbone``, ``img_neck`` and ``view_transform.depthnet``
    (``render_pretrain.converters.tables.MIM4D_DEPTH_NET``); the rest
    (``img_masker``, ``temporal_predictor``, ``render_head``,
    ``view_transform.volume_proj``) is discarded at transfer. Batch size and
    camera count come from the inputs.

    Args:
        data_preprocessor (dict): ``Det3DDataPreprocessor`` config.
        img_backbone, img_neck, view_transform (dict): Encoder configs.
        temporal_predictor (dict): ``MIM4DTemporalPredictor`` config.
        render_head (dict): ``MIM4DNeuSRenderHead`` config.
        img_masker (dict, optional): ``MIM4DImageMasker`` (None: no masking).
        target_frames (Sequence[int]): Sweep indices withheld and predicted
            (0 = key frame); the targets outside training and, without
            ``bitemporal``, in training.
        bitemporal (bool): In training, predict and render two target frames
            per step: the key frame and one sweep drawn uniformly from the
            others (the released bi-temporal selection); needs
            ``target_frames == [0]``.
        direct_loss_weight (float): Weight of the direct-volume rendering
            losses relative to the predicted volume's (released: 1, both with
            the render head's weights); 0 renders only the predicted volume.
        vis_stride (int): Pixel step of the images rendered by ``predict``.
        seed (int, optional): Replaces the run's seed in the key of the
            generators drawing masks and rays (:meth:`generator`).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 data_preprocessor: dict,
                 img_backbone: dict,
                 img_neck: dict,
                 view_transform: dict,
                 temporal_predictor: dict,
                 render_head: dict,
                 img_masker: Optional[dict] = None,
                 target_frames: Sequence[int] = (0, ),
                 bitemporal: bool = False,
                 direct_loss_weight: float = 0.0,
                 vis_stride: int = 8,
                 seed: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if len(target_frames) == 0:
            raise ValueError('target_frames must name at least one sweep index')
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck)
        self.view_transform = MODELS.build(view_transform)
        self.temporal_predictor = MODELS.build(temporal_predictor)
        self.render_head = MODELS.build(render_head)
        box = self.view_transform.grid.aabb
        if not all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
                   for a, b in zip(self.render_head.aabb, box)):
            raise ValueError(f'render_head.aabb {tuple(self.render_head.aabb)} must be the '
                             f'volume box view_transform.point_cloud_range {box}: the SDF field '
                             'reads the volume over its aabb')
        self.img_masker = MODELS.build(img_masker) if img_masker is not None else None
        self.target_frames = sorted({int(t) for t in target_frames})
        self.bitemporal = bool(bitemporal)
        if self.bitemporal and self.target_frames != [0]:
            raise ValueError(f'bitemporal draws the targets [0, k]; it needs target_frames=[0], '
                             f'got {self.target_frames}')
        if direct_loss_weight < 0:
            raise ValueError(f'direct_loss_weight must be >= 0, got {direct_loss_weight}')
        self.direct_loss_weight = float(direct_loss_weight)
        self.vis_stride = int(vis_stride)
        self._generators = KeyedTorchGenerators(seed)

    def generator(self, device: torch.device) -> torch.Generator:
        """The generator on ``device`` of the current iteration.

        The CPU one draws the image masks and the rays (masks and rays are
        drawn on the CPU and moved, so they do not depend on the device);
        the one on the data's device jitters the samples along the rays.
        ``SeededRandomnessHook`` re-derives them before every iteration from
        (run seed, rank, phase, iteration) through :meth:`set_random_key`;
        outside a Runner each is seeded once (``seed`` or torch's global RNG).
        """
        return self._generators.get(device)

    def set_random_key(self, seed: int, *keys: int) -> None:
        """Derive the generators from ``(seed, *keys)`` (the model's ``seed`` replaces ``seed``).

        See :class:`render_pretrain.seeding.KeyedTorchGenerators`.
        """
        self._generators.set_key(seed, *keys)

    # ------------------------------------------------------------------ #
    # inputs
    # ------------------------------------------------------------------ #
    def _meta(self, data_samples: Sequence[Det3DDataSample], ref: Tensor) -> Dict[str, Tensor]:
        """Stack the sweep metas: matrices (B, S, N, 4, 4), (B, S, 4, 4), (B, S), (B, S, N)."""
        for key in _REQUIRED_META:
            if any(key not in sample.metainfo for sample in data_samples):
                raise KeyError(f'data sample meta has no {key!r}: load with '
                               'MIM4DLoadMultiViewSweeps and list it in '
                               'Pack3DDetInputs(meta_keys=...)')
        sweeps = {int(sample.metainfo['num_sweeps']) for sample in data_samples}
        if len(sweeps) != 1:
            raise ValueError(f'all samples of a batch need the same num_sweeps, got {sweeps}')
        num_sweeps = sweeps.pop()
        bad = [t for t in self.target_frames if not 0 <= t < num_sweeps]
        if bad or num_sweeps < 2:
            raise ValueError(f'target_frames {self.target_frames} need num_sweeps >= 2 and '
                             f'indices < num_sweeps = {num_sweeps}')

        metas = [sample.metainfo for sample in data_samples]

        def stack(key: str) -> Tensor:
            return stack_sample_meta(metas, key, ref)

        views = stack('cam2img').shape[1]
        if views % num_sweeps:
            raise ValueError(f'{views} views per sample are not a multiple of num_sweeps='
                             f'{num_sweeps}')
        shape = (len(data_samples), num_sweeps, views // num_sweeps, 4, 4)
        source = torch.as_tensor(np.stack([np.asarray(s.metainfo['sweep_source'], dtype=np.int64)
                                           for s in data_samples]), device=ref.device)
        if source.shape != shape[:3]:
            raise ValueError(f'sweep_source must be (S, N_cam) = {shape[1:3]} per sample, got '
                             f'{tuple(source.shape[1:])}')
        return dict(
            cam2img=intrinsics_to_4x4(stack('cam2img')).view(shape),
            lidar2cam=stack('lidar2cam').view(shape),
            img_aug_matrix=stack('img_aug_matrix').view(shape),
            sweep2lidar=stack('sweep2lidar'),
            time=stack('sweep_time_offsets'),
            source=source,
            num_sweeps=num_sweeps)

    def _images_to_unit_range(self, imgs: Tensor) -> Tensor:
        """Undo the preprocessor normalisation: (..., 3, H, W) -> [0, 1]."""
        return images_to_unit_range(imgs, *preprocessor_normalization(self.data_preprocessor))

    @staticmethod
    def _image_size(data_samples: Sequence[Det3DDataSample], imgs: Tensor) -> List[int]:
        """(H, W) of the valid (unpadded) image, pixels."""
        shapes = {tuple(s.metainfo.get('img_shape', imgs.shape[-2:]))[:2] for s in data_samples}
        if len(shapes) != 1:
            raise ValueError(f'all samples of a batch need the same img_shape, got {shapes}')
        return [int(v) for v in shapes.pop()]

    # ------------------------------------------------------------------ #
    # features
    # ------------------------------------------------------------------ #
    def _hidden_views(self, meta: Dict[str, Tensor], frames: List[int],
                      targets: List[int]) -> Tensor:
        """Views of the encoded frames that hold a copy of a target frame's image.

        At the start of a scene the loader repeats the key frame into the
        empty context slots (``sweep_source``). Slot ``(f, n)`` is hidden
        when some target frame ``t != f`` of this step (``targets``) holds
        the same frame of camera ``n`` (``source[t, n] == source[f, n]``):
        encoding it would show the withheld target to its own context.

        Returns:
            Tensor: (B, F, N_cam) bool, True = hidden.
        """
        source = meta['source']
        frame_ids = torch.as_tensor(frames, device=source.device)
        target_ids = torch.as_tensor(targets, device=source.device)
        same = source[:, frame_ids].unsqueeze(2) == source[:, target_ids].unsqueeze(1)
        other = (frame_ids.view(-1, 1) != target_ids.view(1, -1)).view(1, len(frames), -1, 1)
        return (same & other).any(dim=2)

    def _encode(self, imgs: Tensor, meta: Dict[str, Tensor], frames: List[int],
                targets: List[int], generator: torch.Generator) -> dict:
        """Mask and lift the given frames: volumes (B, F, C, Z, Y, X).

        Views that hold a copy of a target frame's image
        (:meth:`_hidden_views`, scene starts) are replaced by a fully masked
        image (the mask token in every cell; zeros, the normalised mean,
        without a masker) before the backbone, so neither their features nor
        the batch statistics carry the target. Each frame goes through the
        backbone, neck and view transform on its own: training-mode
        BatchNorm statistics never mix frames, so with several target frames
        a target's images do not normalise the context of another.
        """
        batch, num_sweeps, num_cams = meta['cam2img'].shape[:3]
        index = torch.as_tensor(frames, device=imgs.device)
        frame_imgs = imgs.view(batch, num_sweeps, num_cams, *imgs.shape[2:])[:, index]
        if self.img_masker is not None:
            masked, mask = self.img_masker(frame_imgs, generator)
        else:
            masked, mask = frame_imgs, None
        hidden = self._hidden_views(meta, frames, targets).to(imgs.device)
        if hidden.any():
            if self.img_masker is not None:
                cells = [size // self.img_masker.cell_size for size in imgs.shape[-2:]]
                blank = self.img_masker.mask_token.repeat(1, *cells)
                mask = mask | hidden[..., None, None]
            else:
                blank = imgs.new_zeros(imgs.shape[2:])
            masked = torch.where(hidden[..., None, None, None], blank, masked)
        volumes = []
        for position, frame in enumerate(frames):
            feats = self.img_neck(self.img_backbone(masked[:, position].flatten(0, 1)))
            if isinstance(feats, (list, tuple)):
                feats = feats[0]
            feats = feats.view(batch, num_cams, *feats.shape[1:])
            # camera -> the frame's own LiDAR frame: inv(sweep2lidar) @ cam2lidar
            cam2frame = (torch.linalg.inv(meta['sweep2lidar'][:, frame]).unsqueeze(1)
                         @ torch.linalg.inv(meta['lidar2cam'][:, frame]))
            volumes.append(self.view_transform(feats, meta['cam2img'][:, frame], cam2frame,
                                               meta['img_aug_matrix'][:, frame])['volume'])
        return dict(volumes=torch.stack(volumes, dim=1), masked_imgs=masked, img_mask=mask,
                    hidden_views=hidden)

    def extract_feat(self, batch_inputs: dict,
                     data_samples: Sequence[Det3DDataSample]) -> dict:
        """Encode the context frames and predict every target frame's volume.

        Args:
            batch_inputs (dict): ``imgs`` (B, S * N_cam, 3, H, W) normalised
                (sweep-major) and ``points`` (list of (P_b, C_pt) key-frame
                LiDAR points, metres).
            data_samples (Sequence[Det3DDataSample]): metas ``cam2img``,
                ``lidar2cam``, ``img_aug_matrix`` (S * N_cam, 4, 4),
                ``sweep2lidar`` (S, 4, 4), ``sweep_time_offsets`` (S,),
                ``sweep_source`` (S, N_cam), ``num_sweeps``.

        Returns:
            dict: ``meta`` (stacked matrices), ``targets`` (list of the
            predicted sweep indices), ``predicted`` (target frame ->
            (B, C, Z, Y, X) predicted volume), ``context_frames`` (list of
            encoded sweep indices), ``volumes`` (B, F, C, Z, Y, X),
            ``masked_imgs`` (B, F, N_cam, 3, H, W), ``img_mask``,
            ``hidden_views`` (B, F, N_cam) bool (fully masked copies of a
            target frame).
        """
        imgs = batch_inputs.get('imgs')
        if imgs is None or imgs.dim() != 5:
            raise ValueError('MIM4D needs batch_inputs["imgs"] (B, S * N_cam, 3, H, W)')
        meta = self._meta(data_samples, imgs)
        num_sweeps = meta['num_sweeps']
        generator = self.generator(torch.device('cpu'))
        targets = self._draw_targets(num_sweeps, generator)
        excluded = targets[0] if len(targets) == 1 else None
        frames = [s for s in range(num_sweeps) if s != excluded]
        encoded = self._encode(imgs, meta, frames, targets, generator)
        predicted = dict()
        aabb = self.view_transform.grid.aabb
        for target in targets:
            ctx = [i for i, s in enumerate(frames) if s != target]
            ctx_frames = torch.as_tensor([frames[i] for i in ctx], device=imgs.device)
            volumes = encoded['volumes'][:, ctx]
            # target frame -> context frame: inv(sweep2lidar_ctx) @ sweep2lidar_target
            src_from_dst = (torch.linalg.inv(meta['sweep2lidar'][:, ctx_frames])
                            @ meta['sweep2lidar'][:, target:target + 1])
            warped, valid = warp_volume(volumes.flatten(0, 1), src_from_dst.flatten(0, 1),
                                        aabb)
            dt = meta['time'][:, ctx_frames] - meta['time'][:, target:target + 1]
            predicted[target] = self.temporal_predictor(
                warped.view(volumes.shape), valid.view(volumes.shape[:2] + volumes.shape[3:]),
                dt)
        return dict(meta=meta, targets=targets, predicted=predicted, context_frames=frames,
                    **encoded)

    def _draw_targets(self, num_sweeps: int, generator: torch.Generator) -> List[int]:
        """The target frames of this step: ``target_frames``, or [0, k] (bi-temporal)."""
        if not (self.bitemporal and self.training):
            return list(self.target_frames)
        other = int(torch.randint(1, num_sweeps, (1, ), generator=generator).item())
        return [0, other]

    def _direct_volumes(self, batch_inputs: dict, feats: dict) -> Dict[int, Tensor]:
        """Each target frame's volume lifted from its own masked images.

        Reuses the context pass's volume of a target frame that was encoded
        there (several targets, as released); the others (a withheld single
        target) are encoded in a separate backbone pass.

        Returns:
            dict[int, Tensor]: target frame -> (B, C, Z, Y, X) volume.
        """
        frames, targets = feats['context_frames'], feats['targets']
        missing = [t for t in targets if t not in frames]
        if missing:
            extra = self._encode(batch_inputs['imgs'], feats['meta'], missing, targets,
                                 self.generator(torch.device('cpu')))['volumes']
        return {t: (feats['volumes'][:, frames.index(t)] if t in frames
                    else extra[:, missing.index(t)]) for t in targets}

    # ------------------------------------------------------------------ #
    # rendering
    # ------------------------------------------------------------------ #
    def _target_geometry(self, batch_inputs: dict, meta: dict, target: int):
        """Key-frame LiDAR points moved into a target frame, and its projections.

        Args:
            batch_inputs (dict): ``points`` (list of (P_b, C_pt) key-frame
                LiDAR points, metres).
            meta (dict): Output of :meth:`_meta`.
            target (int): Sweep index of the target frame.

        Returns:
            tuple: ``xyz`` (P, 3) points in the target frame's own LiDAR
            frame (metres, packed over the batch), ``batch_idx`` (P,) int64,
            ``lidar2img`` (B, N_cam, 4, 4) target frame -> AUGMENTED image
            pixels (``render_pretrain.camera_geometry.compose_lidar2img``).
        """
        points = batch_inputs.get('points')
        if points is None:
            raise KeyError('MIM4D needs batch_inputs["points"] (key-frame LiDAR points)')
        xyz, batch_idx = pack_points(points)
        xyz = xyz.to(meta['sweep2lidar'].dtype)
        frame_from_key = torch.linalg.inv(meta['sweep2lidar'][:, target])  # (B, 4, 4)
        rot, trans = frame_from_key[batch_idx, :3, :3], frame_from_key[batch_idx, :3, 3]
        xyz = (rot @ xyz.unsqueeze(-1)).squeeze(-1) + trans
        # target frame -> key-frame LiDAR -> camera -> original pixels -> augmented pixels;
        # img_aug_matrix acts after the perspective division (compose_lidar2img).
        lidar2img = compose_lidar2img(
            meta['cam2img'][:, target],
            meta['lidar2cam'][:, target] @ meta['sweep2lidar'][:, target:target + 1],
            meta['img_aug_matrix'][:, target])
        return xyz, batch_idx, lidar2img

    def _target_rays(self, batch_inputs: dict, data_samples, meta: dict, target: int):
        """Draw the rays of one target frame and their colour targets.

        Returns:
            tuple: ``CameraRays`` (target frame, metres; on the images'
            device) and the (R, 3) colour target of each ray in [0, 1], the
            nearest pixel of the unmasked target image.
        """
        imgs = batch_inputs['imgs']
        batch, num_sweeps, num_cams = meta['cam2img'].shape[:3]
        img_h, img_w = self._image_size(data_samples, imgs)
        pad_h, pad_w = imgs.shape[-2:]
        cpu = torch.device('cpu')
        xyz, point_batch, lidar2img = self._target_geometry(batch_inputs, meta, target)
        # Rays are drawn on the CPU (the generator's device), then moved.
        rays = self.render_head.sample_rays(xyz.to(cpu), point_batch.to(cpu),
                                            lidar2img.to(cpu), (img_h, img_w),
                                            self.generator(cpu))
        rays = type(rays)(*(field.to(imgs.device) for field in rays))
        target_imgs = self._images_to_unit_range(
            imgs.view(batch, num_sweeps, num_cams, 3, pad_h, pad_w)[:, target])
        cols = rays.pixels[:, 0].round().long().clamp(0, img_w - 1)
        rows = rays.pixels[:, 1].round().long().clamp(0, img_h - 1)
        return rays, target_imgs[rays.batch_idx, rays.cam_idx, :, rows, cols]

    def _render_losses(self, batch_inputs: dict, data_samples, feats: dict) -> Dict[str, Tensor]:
        """Draw rays of every target frame, render its predicted (and direct) volume.

        The direct volume is rendered along the same rays; its terms carry
        the suffix ``_direct`` and the factor ``direct_loss_weight``. Every
        term is averaged over the target frames.
        """
        imgs = batch_inputs['imgs']
        meta = feats['meta']
        totals: Dict[str, Tensor] = dict()
        targets = feats['targets']
        volumes = dict(predicted=feats['predicted'])
        if self.direct_loss_weight > 0:
            volumes['direct'] = self._direct_volumes(batch_inputs, feats)
        for target in targets:
            rays, rgb_target = self._target_rays(batch_inputs, data_samples, meta, target)
            for kind, by_target in volumes.items():
                rendered = self.render_head(by_target[target], rays.origins, rays.directions,
                                            rays.batch_idx,
                                            self.generator(imgs.device) if self.training else None)
                suffix, weight = (('', 1.0) if kind == 'predicted'
                                  else ('_direct', self.direct_loss_weight))
                for name, value in self.render_head.loss(rendered, rays, rgb_target).items():
                    totals[name + suffix] = (totals.get(name + suffix, 0.0)
                                             + value * weight / len(targets))
        return totals

    def loss(self, batch_inputs: dict,
             batch_data_samples: Sequence[Det3DDataSample]) -> Dict[str, Tensor]:
        """Rendering losses averaged over the target frames.

        Returns:
            dict[str, Tensor]: ``loss_rgb``, ``loss_depth`` (and
            ``loss_eikonal``) of the predicted volume, each times its weight
            in the render head, and with ``direct_loss_weight > 0`` the
            direct volume's ``loss_rgb_direct``, ``loss_depth_direct`` (and
            ``loss_eikonal_direct``), times ``direct_loss_weight`` too.
        """
        feats = self.extract_feat(batch_inputs, batch_data_samples)
        return self._render_losses(batch_inputs, batch_data_samples, feats)

    def _forward(self, batch_inputs: dict,
                 batch_data_samples: Sequence[Det3DDataSample]) -> dict:
        """Raw tensors: predicted volumes per target frame and context volumes."""
        feats = self.extract_feat(batch_inputs, batch_data_samples)
        return dict(predicted=feats['predicted'], volumes=feats['volumes'])

    def predict(self, batch_inputs: dict,
                batch_data_samples: Sequence[Det3DDataSample]) -> List[Det3DDataSample]:
        """Render the first target frame on a pixel grid; attach to the samples.

        Each sample gets ``render_outputs`` (:class:`BaseDataElement`):
        ``rgb`` / ``rgb_target`` (N_cam, 3, h, w) in [0, 1], ``depth`` /
        ``depth_target`` (N_cam, h, w) metres along the optical axis (target
        0 without LiDAR), ``target_frame`` (int); h, w = image size /
        ``vis_stride``.
        """
        feats = self.extract_feat(batch_inputs, batch_data_samples)
        imgs, meta = batch_inputs['imgs'], feats['meta']
        batch, num_sweeps, num_cams = meta['cam2img'].shape[:3]
        target = self.target_frames[0]
        img_h, img_w = self._image_size(batch_data_samples, imgs)
        stride = self.vis_stride
        img_h, img_w = img_h - img_h % stride, img_w - img_w % stride
        xyz, point_batch, lidar2img = self._target_geometry(batch_inputs, meta, target)
        rendered = self.render_head.render_image(feats['predicted'][target], lidar2img,
                                                 (img_h, img_w), stride)
        target_imgs = self._images_to_unit_range(
            imgs.view(batch, num_sweeps, num_cams, *imgs.shape[2:])[:, target])
        rgb_target = F.avg_pool2d(target_imgs[..., :img_h, :img_w].flatten(0, 1), stride)
        depth_target = render_depth_map_from_points(xyz, lidar2img, (img_h, img_w),
                                                    stride=stride, batch_idx=point_batch)
        outputs = dict(rgb=rendered['rgb'], depth=rendered['depth'],
                       rgb_target=rgb_target.view(batch, num_cams, *rgb_target.shape[1:]),
                       depth_target=depth_target)
        for index, sample in enumerate(batch_data_samples):
            sample.render_outputs = BaseDataElement(
                target_frame=target,
                **{name: value[index].detach() for name, value in outputs.items()})
        return list(batch_data_samples)
