"""Convert a SenseVoice-Small checkpoint (FunASR `model.pt` state dict, or a FlexiCodec state
dict whose SenseVoice tensors sit under `semantic_model.`) and its `am.mvn` CMVN file into a
GGUF for encoders/sensevoice/.

What is written
- The query-embedding table `embed.weight [16][560]` and every `encoder.*` tensor of the
  50-block stack (`encoders0.0`, `encoders.{i}`, `after_norm`), under their official names
  with an optional prefix (`--prefix semantic_model.` keeps FlexiCodec's names). The 20
  `tp_encoders`, `tp_norm` and `ctc.*` (CTC head) are dropped unless `--keep-tp` is given:
  FlexiCodec takes the output of `after_norm`, before them.
- The CMVN of am.mvn as `sensevoice.cmvn.shift [560]` (the <AddShift> row) and
  `sensevoice.cmvn.scale [560]` (the <Rescale> row): y = (x + shift) · scale, parsed exactly
  as FunASR's `load_cmvn` does (the numbers between `<LearnRateCoef> 0 [` and `]`).
- Metadata `sensevoice.*`: input_size, output_size, attention_heads, linear_units, num_blocks,
  tp_blocks (as converted), kernel_size, sanm_shift, n_mels, lfr_m, lfr_n, norm_eps, and
  `sensevoice.tensor_prefix` (the prefix used). Sizes are read off the tensors; lfr_m/lfr_n
  and n_mels come from the command line (SenseVoiceSmall's front end: 7, 6, 80).

Usage:
  python tools/convert/sensevoice.py model.pt am.mvn out.gguf [--prefix P] [--src-prefix S]
      [--keep-tp] [--f16]
"""

import argparse
import re
import sys

import numpy as np

try:
    import gguf
except ImportError as e:  # pragma: no cover
    raise SystemExit("tools/convert needs the 'gguf' package: see tools/README.md") from e

ARCH = "sensevoice"


def load_cmvn(path):
    """(shift, scale) float32 arrays from a Kaldi-nnet1 am.mvn, as funasr's load_cmvn."""
    with open(path, "r", encoding="utf-8") as f:
        lines = f.readlines()
    shift = scale = None
    for i, line in enumerate(lines):
        item = line.split()
        if not item:
            continue
        if item[0] in ("<AddShift>", "<Rescale>") and i + 1 < len(lines):
            nxt = lines[i + 1].split()
            if nxt and nxt[0] == "<LearnRateCoef>":
                vals = np.array(nxt[3:len(nxt) - 1], dtype=np.float32)
                if item[0] == "<AddShift>":
                    shift = vals
                else:
                    scale = vals
    if shift is None or scale is None or shift.shape != scale.shape:
        raise ValueError(f"{path}: no <AddShift>/<Rescale> rows of equal length")
    return shift, scale


def write_cmvn(path, shift, scale):
    """An am.mvn in the Kaldi nnet1 text form SenseVoice ships (what load_cmvn reads back):
    features are normalised as (x + shift) * scale."""
    def row(v):
        return "<LearnRateCoef> 0 [ " + " ".join(f"{float(x):.7g}" for x in v) + " ]\n"
    n = len(shift)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"<Nnet> \n<Splice> {n} {n}\n[ 0 ]\n<AddShift> {n} {n} \n")
        f.write(row(shift))
        f.write(f"<Rescale> {n} {n}\n")
        f.write(row(scale))
        f.write("</Nnet> \n")


def encoder_sizes(sd):
    """Hyperparameters read off the tensor shapes of an encoder state dict (no prefix)."""
    qkv0 = sd["encoder.encoders0.0.self_attn.linear_q_k_v.weight"]
    fsmn = sd["encoder.encoders0.0.self_attn.fsmn_block.weight"]
    ff1 = sd["encoder.encoders0.0.feed_forward.w_1.weight"]
    blocks = {int(m.group(1)) for k in sd
              for m in [re.match(r"encoder\.encoders\.(\d+)\.", k)] if m}
    tp = {int(m.group(1)) for k in sd
          for m in [re.match(r"encoder\.tp_encoders\.(\d+)\.", k)] if m}
    return {
        "input_size": int(qkv0.shape[1]),
        "output_size": int(qkv0.shape[0]) // 3,
        "linear_units": int(ff1.shape[0]),
        "num_blocks": 1 + (max(blocks) + 1 if blocks else 0),
        "tp_blocks": max(tp) + 1 if tp else 0,
        "kernel_size": int(fsmn.shape[2]),
    }


def select(sd, keep_tp):
    """The tensors the SDK needs, in a stable order."""
    out = {}
    for k in sorted(sd):
        if k == "embed.weight" or (k.startswith("encoder.") and (
                keep_tp or not (k.startswith("encoder.tp_encoders.")
                                or k.startswith("encoder.tp_norm.")))):
            out[k] = sd[k]
    return out


def add_to_writer(w, sd, shift, scale, heads, lfr_m=7, lfr_n=6, n_mels=80, sanm_shift=0,
                  prefix="", keep_tp=False, f16=False):
    """Adds the `sensevoice.*` metadata, the CMVN and the encoder tensors (named prefix + key)
    to an open gguf.GGUFWriter `w`; sd is a state dict of numpy arrays (keys without any source
    prefix). tools/convert/flexicodec.py uses it to put SenseVoice into a FlexiCodec file.
    Returns the sizes read off the tensors."""
    sizes = encoder_sizes(sd)
    if sizes["input_size"] != lfr_m * n_mels:
        raise ValueError(f"input size {sizes['input_size']} != lfr_m·n_mels {lfr_m * n_mels}")
    if shift.shape[0] != sizes["input_size"]:
        raise ValueError(f"CMVN has {shift.shape[0]} values, expected {sizes['input_size']}")
    if sizes["output_size"] % heads:
        raise ValueError(f"{heads} heads do not divide {sizes['output_size']}")
    tensors = select(sd, keep_tp)
    for k, v in sizes.items():
        if k == "tp_blocks" and not keep_tp:
            v = 0
        w.add_uint32(f"{ARCH}.{k}", v)
    w.add_uint32(f"{ARCH}.attention_heads", heads)
    w.add_uint32(f"{ARCH}.sanm_shift", sanm_shift)
    w.add_uint32(f"{ARCH}.n_mels", n_mels)
    w.add_uint32(f"{ARCH}.lfr_m", lfr_m)
    w.add_uint32(f"{ARCH}.lfr_n", lfr_n)
    w.add_float32(f"{ARCH}.norm_eps", 1e-5)
    w.add_string(f"{ARCH}.tensor_prefix", prefix)
    w.add_tensor(f"{ARCH}.cmvn.shift", np.ascontiguousarray(shift, dtype=np.float32))
    w.add_tensor(f"{ARCH}.cmvn.scale", np.ascontiguousarray(scale, dtype=np.float32))
    for k, v in tensors.items():
        a = np.asarray(v, dtype=np.float32)
        if f16 and a.ndim == 2:
            a = a.astype(np.float16)
        w.add_tensor(prefix + k, np.ascontiguousarray(a))
    return sizes


def write_gguf(path, sd, shift, scale, heads, lfr_m=7, lfr_n=6, n_mels=80, sanm_shift=0,
               prefix="", keep_tp=False, f16=False, name=None):
    """Writes the GGUF from a state dict of numpy arrays (keys without any source prefix)."""
    w = gguf.GGUFWriter(path, ARCH)
    w.add_name(name or "SenseVoice-Small encoder")
    sizes = add_to_writer(w, sd, shift, scale, heads, lfr_m=lfr_m, lfr_n=lfr_n, n_mels=n_mels,
                          sanm_shift=sanm_shift, prefix=prefix, keep_tp=keep_tp, f16=f16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sizes


def load_state_dict(path, src_prefix=None):
    """The SenseVoice tensors of a checkpoint (FunASR model.pt, or a state dict with them under
    `semantic_model.`) as numpy arrays, keys without the source prefix (None: detect it)."""
    import torch
    sd = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    src = src_prefix
    if src is None:
        src = "semantic_model." if any(k.startswith("semantic_model.encoder.") for k in sd) \
            else ""
    return {k[len(src):]: v.float().numpy() for k, v in sd.items() if k.startswith(src)}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("am_mvn")
    ap.add_argument("out")
    ap.add_argument("--prefix", default="", help="prefix for the written tensor names")
    ap.add_argument("--src-prefix", default=None,
                    help="prefix of the SenseVoice keys in the checkpoint (default: auto, '' "
                         "or 'semantic_model.')")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--keep-tp", action="store_true")
    ap.add_argument("--f16", action="store_true", help="store 2-D weights as f16")
    a = ap.parse_args(argv)
    sd = load_state_dict(a.checkpoint, a.src_prefix)
    shift, scale = load_cmvn(a.am_mvn)
    sizes = write_gguf(a.out, sd, shift, scale, a.heads, prefix=a.prefix, keep_tp=a.keep_tp,
                       f16=a.f16)
    print(f"wrote {a.out}: {sizes}")


if __name__ == "__main__":
    main(sys.argv[1:])
