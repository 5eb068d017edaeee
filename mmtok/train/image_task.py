"""What training an image tokenizer needs beyond the shared loop: random crops, L1 + L2
reconstruction loss, PSNR as the progress figure, an optional PatchGAN discriminator."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from mmtok.errors import MmtokError
from mmtok.metrics import psnr
from mmtok.train.image_data import crop_loader, training_files
from mmtok.train.losses import PatchDiscriminator, hinge_d_loss, hinge_g_loss
from mmtok.train.recipe import ImageTrainConfig


class ImageTask:
    quality_name = "psnr"

    def __init__(self, model, cfg: ImageTrainConfig):
        if cfg.crop_size % model.downsample:
            raise MmtokError(f"recipe crop_size {cfg.crop_size} must be a multiple of the downsample factor {model.downsample}")
        self.model, self.cfg = model, cfg

    def loader(self, data: Path, rank: int, start: int, end: int):
        cfg = self.cfg
        files = training_files(data, cfg.exclude)
        return crop_loader(files, cfg.crop_size, cfg.batch_size, cfg.seed, rank, start, end, cfg.num_workers)

    def discriminator(self) -> torch.nn.Module:
        return PatchDiscriminator()

    def generator_loss(self, recon: torch.Tensor, batch: torch.Tensor, disc=None) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        loss = cfg.l1_weight * F.l1_loss(recon, batch) + cfg.l2_weight * F.mse_loss(recon, batch)
        if disc is not None:
            loss = loss + cfg.adv_weight * hinge_g_loss(disc(recon))
        return loss, {}

    def discriminator_loss(self, disc, recon: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return hinge_d_loss(disc(batch), disc(recon.detach()))

    def quality(self, recon: torch.Tensor, batch: torch.Tensor) -> float:
        return psnr(recon.detach(), batch).mean().item()

    @staticmethod
    def streams(ids: torch.Tensor) -> torch.Tensor:
        """Training ids `[B,h,w]` -> `[1, N]` (one code stream)."""
        return ids.reshape(1, -1)
