"""What training a video tokenizer needs beyond the shared loop: random clips, L1 + L2
reconstruction plus a temporal-difference term (against flicker), PSNR as the progress
figure, and an optional PatchGAN discriminator applied frame by frame."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from mmtok.checkpoint import load_tokenizer
from mmtok.errors import MmtokError
from mmtok.metrics import psnr
from mmtok.train.losses import PatchDiscriminator, hinge_d_loss, hinge_g_loss
from mmtok.train.recipe import VideoTrainConfig
from mmtok.train.video_data import clip_loader, training_files
from mmtok.video.inflate import inflate_image_to_video


def _frames(x: torch.Tensor) -> torch.Tensor:
    """`[B,3,T,H,W]` -> `[B*T,3,H,W]` (the image discriminator judges single frames)."""
    return x.transpose(1, 2).flatten(0, 1)


class VideoTask:
    quality_name = "psnr"

    def __init__(self, model, cfg: VideoTrainConfig):
        if cfg.crop_size % model.spatial_downsample:
            raise MmtokError(f"recipe crop_size {cfg.crop_size} must be a multiple of the spatial factor {model.spatial_downsample}")
        if model.frames_for(model.latent_frames(cfg.clip_frames)) != cfg.clip_frames:
            raise MmtokError(f"recipe clip_frames {cfg.clip_frames} must be 1 + a multiple of the temporal factor {model.temporal_downsample}")
        self.model, self.cfg = model, cfg
        if cfg.init_from:  # a resumed run then overwrites these weights with its checkpoint
            self._inflate(cfg.init_from)

    def _inflate(self, folder: str) -> None:
        image_tok = load_tokenizer(Path(folder))
        if image_tok.modality != "image":
            raise MmtokError(f"{folder}: init_from must be an image tokenizer, this one is {image_tok.modality}")
        inflate_image_to_video(image_tok.float(), self.model)

    def loader(self, data: Path, rank: int, start: int, end: int):
        cfg = self.cfg
        files = training_files(data, cfg.exclude)
        return clip_loader(files, cfg.clip_frames, cfg.crop_size, cfg.max_frame_stride, cfg.batch_size, cfg.seed, rank, start, end, cfg.num_workers)

    def discriminator(self) -> torch.nn.Module:
        return PatchDiscriminator()

    def generator_loss(self, recon: torch.Tensor, batch: torch.Tensor, disc=None) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        temporal = F.l1_loss(recon.diff(dim=2), batch.diff(dim=2))
        loss = cfg.l1_weight * F.l1_loss(recon, batch) + cfg.l2_weight * F.mse_loss(recon, batch) + cfg.temporal_weight * temporal
        figures = {"temporal": temporal.item()}
        if disc is not None:
            adv = hinge_g_loss(disc(_frames(recon)))
            loss = loss + cfg.adv_weight * adv
            figures["adv"] = adv.item()
        return loss, figures

    def discriminator_loss(self, disc, recon: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return hinge_d_loss(disc(_frames(batch)), disc(_frames(recon.detach())))

    def quality(self, recon: torch.Tensor, batch: torch.Tensor) -> float:
        return psnr(_frames(recon.detach()), _frames(batch)).mean().item()

    @staticmethod
    def streams(ids: torch.Tensor) -> torch.Tensor:
        """Training ids `[B,t,h,w]` -> `[1, N]` (one code stream)."""
        return ids.reshape(1, -1)
