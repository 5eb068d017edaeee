"""`mmtok eval` for audio: measure (`audio_measure`) every tokenizer at each of its bitrates,
and Opus at the same rates, on the user's files; report (`audio_report`) the numbers in
`report.results["audio"]` and the pictures and tables in the report."""

from __future__ import annotations

from pathlib import Path

import torch

from mmtok.audio.base import AudioTokenizer
from mmtok.errors import MmtokError
from mmtok.eval.audio_measure import OPUS, Measurements, evaluation_rate, measure, opus_rates, plan_bitrates
from mmtok.eval.audio_metrics import pesq_available
from mmtok.eval.audio_report import write_audio_report
from mmtok.eval.baselines.opus import check_opus, opus_alignment
from mmtok.eval.determinism import code_agreement
from mmtok.eval.dnsmos import dnsmos_available
from mmtok.eval.options import EvalOptions
from mmtok.eval.report import Report
from mmtok.eval.selection import spread
from mmtok.media.audio import read_audio


def evaluate_audio(tokenizers: dict[str, AudioTokenizer], files: list[Path], report: Report, options: EvalOptions) -> None:
    """Measure `tokenizers` (all audio) on `files` and fill `report` (sections, figures,
    `results["audio"]`). See the module docstring for what is measured and how."""
    if not files:
        raise MmtokError("--data: no audio files to evaluate; check --data / --heldout")
    plans = {name: plan_bitrates(name, tok, options.kbps) for name, tok in tokenizers.items()}
    asked: list[float] = []
    if OPUS in options.baselines:
        check_opus()
        asked = sorted(set(options.kbps or (round(p.tok.kbps(k), 3) for p in plans.values() for k in p.levels)))
    m = Measurements(evaluation_rate(tokenizers), list(files), plans, [], False)
    m.opus_kbps, m.opus_skipped = opus_rates(asked)
    m.with_pesq = pesq_available() and m.rate >= 16000
    m.with_dnsmos = dnsmos_available()
    measure(m, spread(list(files), options.examples), options.progress)
    for name, plan in plans.items():
        items = torch.stack(m.agreement_items[name])
        m.agreement[name] = {**code_agreement(lambda b, p=plan: p.tok.encode(b, num_quantizers=p.most), items), "levels": plan.most}
    if m.opus_kbps:
        m.alignment = opus_alignment(read_audio(files[0], m.rate, 1), m.rate, files[0].name)
    write_audio_report(report, m, options)
