"""What training an audio codec needs beyond the shared loop: random segments, multi-scale
mel + multi-resolution STFT + waveform L1 losses, SI-SDR as the progress figure, and an
optional discriminator (chosen by the tokenizer kind) with feature matching."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from mmtok.metrics import si_sdr
from mmtok.train.audio_data import segment_loader, training_files
from mmtok.train.audio_discriminators import AudioDiscriminator
from mmtok.train.audio_losses import SpectralLoss, adversarial_losses, discriminator_loss
from mmtok.train.recipe import AudioTrainConfig


class AudioTask:
    quality_name = "si_sdr"

    def __init__(self, model, cfg: AudioTrainConfig):
        self.model, self.cfg = model, cfg
        hop = model.hop_length
        self.segment = max(1, round(cfg.segment_seconds * model.sample_rate / hop)) * hop
        self.spectral = SpectralLoss(model.sample_rate)

    def loader(self, data: Path, rank: int, start: int, end: int):
        cfg, m = self.cfg, self.model
        files = training_files(data, cfg.exclude)
        return segment_loader(files, m.sample_rate, m.channels, self.segment, cfg.batch_size, cfg.seed, rank, start, end, cfg.num_workers)

    def discriminator(self) -> torch.nn.Module:
        """The discriminators the tokenizer kind names (its `discriminators` attribute)."""
        return AudioDiscriminator(self.model.channels, self.model.discriminators)

    def generator_loss(self, recon: torch.Tensor, batch: torch.Tensor, disc=None) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        self.spectral.to(recon.device)
        spectral = self.spectral(recon, batch)
        loss = cfg.mel_weight * spectral["mel"] + cfg.stft_weight * spectral["stft"] + cfg.l1_weight * F.l1_loss(recon, batch)
        figures = {"mel": spectral["mel"].item(), "stft": spectral["stft"].item()}
        if disc is not None:
            adv, fm = adversarial_losses(disc, recon, batch)
            loss = loss + cfg.adv_weight * adv + cfg.feature_weight * fm
            figures.update(adv=adv.item(), fm=fm.item())
        return loss, figures

    def discriminator_loss(self, disc, recon: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return discriminator_loss(disc, recon, batch)

    def quality(self, recon: torch.Tensor, batch: torch.Tensor) -> float:
        return si_sdr(recon.detach(), batch).mean().item()

    @staticmethod
    def streams(ids: torch.Tensor) -> torch.Tensor:
        """Training ids `[B,K,t]` -> `[K, B*t]` (one code stream per residual level)."""
        return ids.transpose(0, 1).reshape(ids.shape[1], -1)
