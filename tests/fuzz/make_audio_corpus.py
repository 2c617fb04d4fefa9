"""Writes the seed corpus of the audio fuzz target (tests/fuzz/corpus/audio/): small valid
files of several containers and encodings (ok_*) and files that each break one rule (bad_*).
WAV and AIFF are written by hand with the standard library; FLAC and Ogg Vorbis seeds are added
when the `soundfile` package is importable. Usage: python tests/fuzz/make_audio_corpus.py"""

import io
import math
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "audio")


def tone(n, rate, f=440.0, amp=0.5):
    return [amp * math.sin(2 * math.pi * f * i / rate) for i in range(n)]


def wav(samples, rate, channels=1, fmt="pcm16", riff_size=None, data_size=None, extra=b""):
    """A RIFF/WAVE file; samples are interleaved floats in [-1, 1] (any float for 'float')."""
    if fmt == "pcm16":
        tag, bits = 1, 16
        body = b"".join(struct.pack("<h", max(-32768, min(32767, int(s * 32767)))) for s in samples)
    elif fmt == "pcm8":
        tag, bits = 1, 8
        body = bytes(max(0, min(255, int(s * 127 + 128))) for s in samples)
    elif fmt == "pcm24":
        tag, bits = 1, 24
        body = b"".join(struct.pack("<i", int(s * 8388607))[:3] for s in samples)
    elif fmt == "float":
        tag, bits = 3, 32
        body = b"".join(struct.pack("<f", s) for s in samples)
    else:
        raise ValueError(fmt)
    block = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    data_len = len(body) if data_size is None else data_size
    chunks = b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + extra
    chunks += b"data" + struct.pack("<I", data_len & 0xFFFFFFFF) + body
    size = 4 + len(chunks) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size & 0xFFFFFFFF) + b"WAVE" + chunks


def aiff(samples, rate):
    body = b"".join(struct.pack(">h", int(s * 32767)) for s in samples)
    # 80-bit IEEE extended sample rate
    e = int(math.floor(math.log2(rate)))
    mant = int(rate * (1 << (63 - e)))
    ext = struct.pack(">HQ", 16383 + e, mant)
    comm = struct.pack(">hIh", 1, len(samples), 16) + ext
    ssnd = struct.pack(">II", 0, 0) + body
    form = b"AIFF" + b"COMM" + struct.pack(">I", len(comm)) + comm
    form += b"SSND" + struct.pack(">I", len(ssnd)) + ssnd
    return b"FORM" + struct.pack(">I", len(form)) + form


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}
    t = tone(400, 16000)
    files["ok_pcm16_16k.wav"] = wav(t, 16000)
    files["ok_pcm8_8k.wav"] = wav(tone(300, 8000), 8000, fmt="pcm8")
    files["ok_pcm24_48k_stereo.wav"] = wav(tone(600, 48000), 48000, channels=2, fmt="pcm24")
    files["ok_float_22k.wav"] = wav(tone(300, 22050), 22050, fmt="float")
    files["ok_pcm16_96k.wav"] = wav(tone(500, 96000), 96000)
    files["ok_pcm16_11k_6ch.wav"] = wav(tone(600, 11025), 11025, channels=6)
    files["ok_aiff_44k.aiff"] = aiff(tone(400, 44100), 44100)
    files["ok_empty_data.wav"] = wav([], 16000)
    files["bad_nan.wav"] = wav(t[:100] + [float("nan"), float("inf"), -float("inf")] + t[:100],
                                16000, fmt="float")
    files["bad_huge_value.wav"] = wav(t[:50] + [3.0e7] + t[:50], 16000, fmt="float")
    files["bad_truncated.wav"] = wav(t, 16000)[:300]
    files["bad_data_size_lies.wav"] = wav(t, 16000, data_size=0x7FFFFFF0)
    # a RIFF size past the end of the file is ignored when the data chunk is complete
    files["ok_riff_size_lies.wav"] = wav(t, 16000, riff_size=0xFFFFFFF0)
    files["bad_streaming_sizes.wav"] = wav(t, 16000, riff_size=0xFFFFFFFF, data_size=0xFFFFFFFF)
    files["bad_zero_channels.wav"] = wav(t, 16000, channels=0)
    files["bad_rate_zero.wav"] = wav(t, 1)[:24] + struct.pack("<I", 0) + wav(t, 1)[28:]
    files["bad_rate_huge.wav"] = wav(t, 16000)[:24] + struct.pack("<I", 4000000000) + wav(t, 16000)[28:]
    files["bad_magic.wav"] = b"RIFX" + wav(t, 16000)[4:]
    files["bad_odd_chunk.wav"] = wav(t, 16000, extra=b"LIST" + struct.pack("<I", 0x7FFFFFFF))
    files["bad_not_audio.bin"] = b"this is not an audio file at all" * 4
    try:
        import numpy as np
        import soundfile as sf
        x = np.array(tone(1600, 16000), dtype=np.float32)
        for name, fmt, sub in (("ok_flac_16k.flac", "FLAC", "PCM_16"),
                               ("ok_vorbis_16k.ogg", "OGG", "VORBIS")):
            b = io.BytesIO()
            sf.write(b, x, 16000, format=fmt, subtype=sub)
            files[name] = b.getvalue()
        files["bad_flac_truncated.flac"] = files["ok_flac_16k.flac"][: len(files["ok_flac_16k.flac"]) // 2]
    except ImportError:
        print("soundfile not importable: FLAC and Ogg seeds skipped")
    for name, data in sorted(files.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(files)} seeds to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
