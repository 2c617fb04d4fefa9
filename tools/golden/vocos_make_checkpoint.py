"""Random-weight Vocos checkpoints in the official release layout (config.yaml +
pytorch_model.bin), for parity fixtures and full-size parity checks without downloading the
released models.

Configs:
- full size: `vocos-mel-24khz` and `vocos-encodec-24khz`, as released (the vocos 0.1.0 wheel
  ships no config files; the values below are those of the released config.yaml files, also
  restated in the model spec);
- small: `mel-small` (16 kHz, n_fft 256, hop 64, 32 mels, "center"), `mel-same-1280`
  (16 kHz, n_fft 1280, hop 320, "same" padding in both the mel front end and the head: the
  shape of DashengTokenizer's decoder) and `encodec-small` (EnCodec 24 kHz codebooks, 1 and
  2 codebooks at its two bandwidths, AdaLayerNorm over 2 bandwidths, n_fft 640 / hop 320
  "same").

The official classes build every model. Their initialisation leaves LayerNorms, layer scales
and AdaLayerNorm tables at identity-like values and biases at zero; all of these are
re-drawn here (fixed seed) so a parity test cannot pass by skipping one. EnCodec's
pretrained weights are never fetched: EncodecFeatures is built around an untrained EnCodec
(pretrained=False) and its codebooks are re-drawn. As in the released vocos-encodec file, the
EnCodec weights are left out of pytorch_model.bin; `load_official` re-attaches them the way
`Vocos.from_pretrained` does.

Usage: python tools/golden/vocos_make_checkpoint.py OUT_DIR [--configs NAME ...] [--seed N]
(writes OUT_DIR/<name>/config.yaml and OUT_DIR/<name>/pytorch_model.bin)
"""

import argparse
import contextlib
import copy
import importlib.util
import os
import sys

if __name__ == "__main__":
    # Run as a script, this folder is first on sys.path and its vocos.py (the fixture writer)
    # would shadow the official package imported below: take the folder off the path.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import torch  # noqa: E402
import yaml  # noqa: E402

CONVERTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "convert", "vocos.py")
FE_MEL = "vocos.feature_extractors.MelSpectrogramFeatures"
FE_ENCODEC = "vocos.feature_extractors.EncodecFeatures"
BACKBONE = "vocos.models.VocosBackbone"
HEAD = "vocos.heads.ISTFTHead"


def _cfg(fe_path, fe_args, bb_args, head_args):
    return {
        "feature_extractor": {"class_path": fe_path, "init_args": fe_args},
        "backbone": {"class_path": BACKBONE, "init_args": bb_args},
        "head": {"class_path": HEAD, "init_args": head_args},
    }


CONFIGS = {
    "vocos-mel-24khz": _cfg(
        FE_MEL,
        dict(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100, padding="center"),
        dict(input_channels=100, dim=512, intermediate_dim=1536, num_layers=8),
        dict(dim=512, n_fft=1024, hop_length=256, padding="center"),
    ),
    "vocos-encodec-24khz": _cfg(
        FE_ENCODEC,
        dict(encodec_model="encodec_24khz", bandwidths=[1.5, 3.0, 6.0, 12.0],
             train_codebooks=False),
        dict(input_channels=128, dim=384, intermediate_dim=1152, num_layers=8,
             adanorm_num_embeddings=4),
        dict(dim=384, n_fft=1280, hop_length=320, padding="same"),
    ),
    "mel-small": _cfg(
        FE_MEL,
        dict(sample_rate=16000, n_fft=256, hop_length=64, n_mels=32, padding="center"),
        dict(input_channels=32, dim=64, intermediate_dim=192, num_layers=2),
        dict(dim=64, n_fft=256, hop_length=64, padding="center"),
    ),
    "mel-same-1280": _cfg(
        FE_MEL,
        dict(sample_rate=16000, n_fft=1280, hop_length=320, n_mels=32, padding="same"),
        dict(input_channels=32, dim=64, intermediate_dim=192, num_layers=2),
        dict(dim=64, n_fft=1280, hop_length=320, padding="same"),
    ),
    "encodec-small": _cfg(
        FE_ENCODEC,
        # 0.75 kbps is no EnCodec bandwidth (the EnCodec encoder would refuse it); it is used
        # because only the codes -> features path matters here, and it keeps the codebook
        # table at 2 codebooks (1 MB) while still covering 1 vs 2 codebooks per bandwidth.
        dict(encodec_model="encodec_24khz", bandwidths=[0.75, 1.5], train_codebooks=False),
        dict(input_channels=128, dim=48, intermediate_dim=144, num_layers=2,
             adanorm_num_embeddings=2),
        dict(dim=48, n_fft=640, hop_length=320, padding="same"),
    ),
}
FULL = ("vocos-mel-24khz", "vocos-encodec-24khz")
SMALL = ("mel-small", "mel-same-1280", "encodec-small")


def load_converter():
    """tools/convert/vocos.py as a module (imported by path: its name is the package's)."""
    spec = importlib.util.spec_from_file_location("sotto_convert_vocos", CONVERTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def untrained_encodec():
    """Makes EncodecFeatures build an untrained EnCodec instead of downloading weights."""
    from encodec import EncodecModel

    saved = {}
    for name in ("encodec_model_24khz", "encodec_model_48khz"):
        orig = getattr(EncodecModel, name)
        saved[name] = orig

        def make(*args, _orig=orig, **kwargs):
            kwargs["pretrained"] = False
            return _orig(*args, **kwargs)

        setattr(EncodecModel, name, staticmethod(make))
    try:
        yield
    finally:
        for name, orig in saved.items():
            setattr(EncodecModel, name, staticmethod(orig))


def build(cfg):
    """The official Vocos object for a config dict (untrained)."""
    from vocos.pretrained import Vocos, instantiate_class

    with untrained_encodec():
        return Vocos(
            feature_extractor=instantiate_class((), cfg["feature_extractor"]),
            backbone=instantiate_class((), cfg["backbone"]),
            head=instantiate_class((), cfg["head"]),
        )


def randomize(model, seed):
    """Draws every generator parameter so nothing is an identity (fixed seed)."""
    g = torch.Generator().manual_seed(seed)

    def normal(t, mean, std):
        with torch.no_grad():
            t.copy_(mean + std * torch.randn(t.shape, generator=g))

    def uniform(t, lo, hi):
        with torch.no_grad():
            t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g))

    for name, p in model.named_parameters():
        if name.startswith("feature_extractor.encodec."):
            continue
        if name == "feature_extractor.codebook_weights":
            normal(p, 0.0, 0.5)
        elif name.endswith("norm.scale.weight"):  # AdaLayerNorm scale table
            uniform(p, 0.5, 1.5)
        elif name.endswith("norm.shift.weight"):  # AdaLayerNorm shift table
            normal(p, 0.0, 0.2)
        elif name.endswith("gamma"):
            uniform(p, 0.1, 1.0)
        elif "norm" in name and name.endswith(".weight"):  # LayerNorm affine
            uniform(p, 0.5, 1.5)
        elif name.endswith(".bias"):
            normal(p, 0.0, 0.1)
        elif name.endswith(".weight"):
            fan_in = p[0].numel()  # Conv1d [out, in/groups, k] or Linear [out, in]
            normal(p, 0.0, 1.0 / fan_in ** 0.5)
        else:
            raise ValueError(f"unexpected parameter {name}")
    # Raise the log-magnitude half of the head bias so that a few magnitudes reach the
    # head's clip at 100 (exp(4.6)) and the fixtures exercise it.
    with torch.no_grad():
        b = model.head.out.bias
        b[: b.numel() // 2] += 1.2
    return model


def generator_state_dict(model):
    """State dict as released: without the EnCodec weights the official loader re-attaches."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if not k.startswith("feature_extractor.encodec.")}


def save(model, cfg, directory):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.yaml"), "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    torch.save(generator_state_dict(model), os.path.join(directory, "pytorch_model.bin"))


def load_official(directory):
    """The official loading path of `Vocos.from_pretrained` for a local folder: from_hparams,
    torch.load, EnCodec weights re-attached for EnCodec features, strict load_state_dict."""
    from vocos.feature_extractors import EncodecFeatures
    from vocos.pretrained import Vocos

    with untrained_encodec():
        model = Vocos.from_hparams(os.path.join(directory, "config.yaml"))
    sd = torch.load(os.path.join(directory, "pytorch_model.bin"), map_location="cpu")
    if isinstance(model.feature_extractor, EncodecFeatures):
        sd.update({"feature_extractor.encodec." + k: v
                   for k, v in model.feature_extractor.encodec.state_dict().items()})
    model.load_state_dict(sd)
    model.eval()
    return model


def make(name, out_dir, seed):
    cfg = copy.deepcopy(CONFIGS[name])
    torch.manual_seed(seed)
    model = randomize(build(cfg), seed)
    directory = os.path.join(out_dir, name)
    save(model, cfg, directory)
    n = sum(v.numel() for v in generator_state_dict(model).values())
    print(f"wrote {directory} ({n / 1e6:.2f} M values)")
    return directory


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--configs", nargs="+", choices=sorted(CONFIGS),
                    default=list(SMALL) + list(FULL))
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.configs:
        make(name, args.out_dir, args.seed)


if __name__ == "__main__":
    main()
