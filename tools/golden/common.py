"""Shared helpers for golden-fixture scripts: write inputs, intermediates and outputs of a
reference computation as one GGUF file under tests/data/, with the package versions and the
command that made it recorded as metadata, so the C tests read them with our own reader."""

import importlib.metadata
import os
import platform
import sys

import numpy as np

try:
    import gguf
except ImportError as e:  # pragma: no cover
    raise SystemExit("tools/golden needs the 'gguf' package: see tools/README.md") from e

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO, "tests", "data")


def versions(*modules):
    """'name==version' for python and each importable module name given."""
    out = ["python==" + platform.python_version(), "numpy==" + np.__version__]
    for name in modules:
        try:
            mod = __import__(name)
        except ImportError:
            continue
        ver = getattr(mod, "__version__", None)
        if ver is None:  # e.g. gguf: only the installed distribution knows its version
            try:
                ver = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                ver = "?"
        out.append(f"{name}=={ver}")
    return ", ".join(out)


class Fixture:
    """Collects named arrays and metadata, then writes tests/data/<rel>."""

    def __init__(self, rel, modules=("torch",)):
        self.rel = rel
        self.path = os.path.join(DATA, rel)
        self.meta = {}
        self.tensors = {}
        self.modules = modules

    def add(self, name, array, dtype=np.float32):
        a = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        if a.ndim == 0:
            a = a.reshape(1)
        if a.ndim > 4:
            raise ValueError(f"{name}: {a.ndim} dims, GGUF fixtures hold at most 4")
        self.tensors[name] = a

    def set(self, key, value):
        self.meta[key] = value

    def write(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        w = gguf.GGUFWriter(self.path, "sotto-golden")
        rel_script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO)
        w.add_string("sotto.golden.command", " ".join(["python", rel_script] + sys.argv[1:]))
        w.add_string("sotto.golden.versions", versions(*self.modules))
        for k, v in self.meta.items():
            if isinstance(v, bool):
                w.add_bool(k, v)
            elif isinstance(v, int):
                w.add_int64(k, v)
            elif isinstance(v, float):
                w.add_float64(k, v)
            elif isinstance(v, str):
                w.add_string(k, v)
            else:
                raise TypeError(f"{k}: unsupported metadata type {type(v)}")
        for name, a in self.tensors.items():
            w.add_tensor(name, a)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        size = os.path.getsize(self.path)
        print(f"wrote {os.path.relpath(self.path, REPO)} ({size} bytes, {len(self.tensors)} tensors)")
