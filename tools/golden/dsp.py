"""Golden fixtures for the DSP front ends (sdk/src/dsp): torch.stft / torch.istft, the Vocos
"same"-padding ISTFT, torchaudio mel spectrograms and filterbanks, AmplitudeToDB, and Kaldi
fbank, all computed on short excerpts of real speech from the shared speech corpus.

Writes tests/data/dsp/{stft,mel,fbank}.gguf. Arrays are stored time-major like the SDK
([T][F][2] for complex spectra, [T][n_mels] for features); torch's [F][T] results are
transposed here, so the C tests compare buffers directly.

Usage: python tools/golden/dsp.py [--speech DIR]
(DIR defaults to $SOTTO_SPEECH_DIR, else ../shared/data/speech beside the repository).
"""

import argparse
import os
import sys

import numpy as np
import soundfile as sf
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi
from torchaudio.functional import melscale_fbanks

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Fixture  # noqa: E402

# Excerpts: a native 24 kHz LibriTTS clip (Vocos rate) and a 16 kHz LibriSpeech clip whose
# first 250 ms are near-silent (exercises the log floors).
SPEECH_24K = "libritts_5142_33396_000002_000004_24k.flac"
SPEECH_16K = "librispeech_2412-153948-0000_16k.flac"
EXCERPT_24K = (0.5, 0.75)  # start, duration in seconds
EXCERPT_16K = (0.0, 1.0)


def load_excerpt(speech_dir, name, want_sr, start_s, dur_s):
    x, sr = sf.read(os.path.join(speech_dir, name), dtype="float32", always_2d=True)
    x = torch.from_numpy(x[:, 0].copy())
    if sr != want_sr:
        x = torchaudio.functional.resample(x, sr, want_sr)
        sr = want_sr
    a = int(round(start_s * sr))
    return x[a : a + int(round(dur_s * sr))].contiguous()


def time_major(spec):
    """torch complex [F, T] -> float32 [T, F, 2]."""
    s = torch.view_as_real(spec.transpose(0, 1).contiguous())
    return s.numpy().astype(np.float32)


def from_time_major(a):
    """[T, F, 2] -> torch complex [F, T]."""
    return torch.view_as_complex(torch.from_numpy(a).contiguous()).transpose(0, 1)


def stft_fixture(x24, x16):
    fx = Fixture("dsp/stft.gguf", modules=("torch", "torchaudio", "vocos"))
    fx.set("sotto.golden.source_24k", SPEECH_24K)
    fx.set("sotto.golden.source_16k", SPEECH_16K)
    fx.set("sotto.golden.excerpt_24k", f"{EXCERPT_24K[0]} s + {EXCERPT_24K[1]} s")
    fx.set("sotto.golden.excerpt_16k", f"{EXCERPT_16K[0]} s + {EXCERPT_16K[1]} s")
    fx.add("x24", x24)
    fx.add("x16", x16)

    # torch.stft, center=True, reflect, periodic Hann, onesided, unnormalised.
    cases = {
        "stft_1024": (x24, 1024, 256, 1024),
        "stft_1280": (x24, 1280, 320, 1280),
        "stft_512": (x16, 512, 128, 512),
        "stft_512_w400": (x16, 512, 160, 400),
    }
    specs = {}
    for name, (x, n_fft, hop, win) in cases.items():
        w = torch.hann_window(win)
        s = torch.stft(x, n_fft, hop, win, w, center=True, pad_mode="reflect",
                       normalized=False, onesided=True, return_complex=True)
        specs[name] = s
        fx.add(name, time_major(s))
        fx.set(f"sotto.golden.{name}.n_fft", n_fft)
        fx.set(f"sotto.golden.{name}.hop", hop)
        fx.set(f"sotto.golden.{name}.win", win)

    # torch.istft(center=True) of consistent spectra (reconstruction, envelope with edges).
    fx.add("istft_1024", torch.istft(specs["stft_1024"], 1024, 256, 1024,
                                     torch.hann_window(1024), center=True))
    fx.add("istft_512_w400", torch.istft(specs["stft_512_w400"], 512, 160, 400,
                                         torch.hann_window(400), center=True))

    # An inconsistent spectrum, as a vocoder head emits: real magnitudes, perturbed phases.
    g = torch.Generator().manual_seed(1234)
    s = specs["stft_1280"]
    phase = torch.angle(s) + 0.7 * torch.randn(s.shape, generator=g)
    mag = torch.abs(s) * (1.0 + 0.3 * torch.rand(s.shape, generator=g))
    pert = torch.polar(mag, phase).to(torch.complex64)
    pert_tm = time_major(pert)
    fx.add("pert_1280", pert_tm)
    pert = from_time_major(pert_tm)  # exactly what the C test reads
    fx.add("istft_center_1280", torch.istft(pert, 1280, 320, 1280, torch.hann_window(1280),
                                            center=True))
    from vocos.spectral_ops import ISTFT

    head = ISTFT(n_fft=1280, hop_length=320, win_length=1280, padding="same")
    fx.add("istft_same_1280", head(pert.unsqueeze(0))[0])
    # The "same" inverse of a centre-padded analysis is a shifted reconstruction; it checks the
    # 1024/256 geometry without storing another spectrum.
    head = ISTFT(n_fft=1024, hop_length=256, win_length=1024, padding="same")
    fx.add("istft_same_1024", head(specs["stft_1024"].unsqueeze(0))[0])
    fx.write()


def mel_fixture(x24, x16):
    fx = Fixture("dsp/mel.gguf", modules=("torch", "torchaudio", "vocos"))
    fx.set("sotto.golden.source_24k", SPEECH_24K)
    fx.set("sotto.golden.source_16k", SPEECH_16K)
    fx.add("x24", x24)
    fx.add("x16", x16)

    # Vocos feature extractor (vocos-mel-24khz): center and "same" padding.
    from vocos.feature_extractors import MelSpectrogramFeatures

    for pad in ("center", "same"):
        fe = MelSpectrogramFeatures(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100,
                                    padding=pad)
        with torch.no_grad():
            mel = fe(x24.unsqueeze(0))[0]  # [n_mels, T], ln(clamp(., 1e-7))
        fx.add(f"vocos_{pad}", mel.transpose(0, 1))
    fx.add("fb_vocos", melscale_fbanks(513, 0.0, 12000.0, 100, 24000, None, "htk"))

    # Slaney scale + Slaney norm, power 2, win 400 < n_fft 512, then AmplitudeToDB(top_db=80).
    ms = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=512, win_length=400,
                                              hop_length=160, f_min=0.0, f_max=8000.0,
                                              n_mels=80, power=2.0, norm="slaney",
                                              mel_scale="slaney")
    mel = ms(x16)
    fx.add("slaney_power", mel.transpose(0, 1))
    db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80.0)(mel)
    fx.add("slaney_db80", db.transpose(0, 1))
    fx.set("sotto.golden.slaney_db80.clamped_fraction",
           float((db == db.max() - 80.0).float().mean()))
    fx.add("fb_slaney", melscale_fbanks(257, 0.0, 8000.0, 80, 16000, "slaney", "slaney"))

    # Further filterbank variants: HTK + Slaney norm, Slaney scale without norm.
    fx.add("fb_htk_slaneynorm", melscale_fbanks(201, 50.0, 7000.0, 40, 16000, "slaney", "htk"))
    fx.add("fb_slaney_nonorm", melscale_fbanks(257, 20.0, 7600.0, 64, 22050, None, "slaney"))
    fx.write()


def fbank_fixture(x16):
    fx = Fixture("dsp/fbank.gguf", modules=("torch", "torchaudio"))
    fx.set("sotto.golden.source_16k", SPEECH_16K)
    fx.add("x16", x16)
    w = x16.unsqueeze(0)
    common = dict(num_mel_bins=80, frame_length=25.0, frame_shift=10.0, dither=0.0,
                  sample_frequency=16000.0, low_freq=20.0, high_freq=0.0)
    # SenseVoice: hamming, int16-range input. CAM++: povey, [-1, 1] input, mean-normalised.
    for snip in (True, False):
        tag = "snip" if snip else "nosnip"
        fx.add(f"hamming_{tag}", kaldi.fbank(w * 32768.0, window_type="hamming",
                                             snip_edges=snip, **common))
        fx.add(f"povey_{tag}", kaldi.fbank(w, window_type="povey", snip_edges=snip, **common))
    fx.add("povey_snip_cmn", kaldi.fbank(w, window_type="povey", snip_edges=True,
                                         subtract_mean=True, **common))
    banks, _ = kaldi.get_mel_banks(80, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)
    fx.add("kaldi_banks", torch.nn.functional.pad(banks, (0, 1)))

    # What dither costs: SenseVoice's front end dithers (std 1 on int16-range samples). Its
    # deviation from the deterministic features is recorded for docs/dsp.md.
    ref = kaldi.fbank(w * 32768.0, window_type="hamming", snip_edges=True, **common)
    diffs = []
    for seed in range(4):
        torch.manual_seed(seed)
        d = kaldi.fbank(w * 32768.0, window_type="hamming", snip_edges=True,
                        **{**common, "dither": 1.0})
        diffs.append((d - ref).abs())
    diffs = torch.stack(diffs)
    fx.set("sotto.golden.dither1.mean_abs", float(diffs.mean()))
    fx.set("sotto.golden.dither1.max_abs", float(diffs.max()))
    fx.set("sotto.golden.dither1.p99_abs", float(torch.quantile(diffs.flatten(), 0.99)))
    print(f"dither=1 vs 0 (hamming, x32768): mean |d| {float(diffs.mean()):.4f}, "
          f"p99 {float(torch.quantile(diffs.flatten(), 0.99)):.4f}, max {float(diffs.max()):.4f}")
    fx.write()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = os.environ.get("SOTTO_SPEECH_DIR") or os.path.join(
        REPO, "..", "shared", "data", "speech")
    ap.add_argument("--speech", default=default_dir, help="folder with the speech corpus")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x24 = load_excerpt(args.speech, SPEECH_24K, 24000, *EXCERPT_24K)
    x16 = load_excerpt(args.speech, SPEECH_16K, 16000, *EXCERPT_16K)
    stft_fixture(x24, x16)
    mel_fixture(x24, x16)
    fbank_fixture(x16)
    total = sum(os.path.getsize(os.path.join(REPO, "tests", "data", "dsp", f))
                for f in ("stft.gguf", "mel.gguf", "fbank.gguf"))
    print(f"tests/data/dsp: {total} bytes")


if __name__ == "__main__":
    main()
