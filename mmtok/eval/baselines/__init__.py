"""Classic codecs that tokenizers are compared with at the same bit rate: JPEG / WebP
(Pillow) for images, Opus for audio and H.264 for video (both through PyAV's FFmpeg)."""
