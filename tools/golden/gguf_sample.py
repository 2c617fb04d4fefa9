"""Writes tests/data/gguf/sample.gguf with the `gguf` package: metadata of every GGUF value
type (scalars and arrays) and a few small f32/f16/i32 tensors with exactly representable
values, so test_gguf.c checks that our reader agrees with the reference writer byte for byte.
The values are fixed (no randomness); test_gguf.c repeats them, so change both together.

Usage: tools/.venv/bin/python tools/golden/gguf_sample.py

Fixture.set() only knows bool/int64/float64/str, so this script drives gguf.GGUFWriter
itself for the other types, recording the same provenance keys that Fixture writes."""

import importlib.metadata
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden.common import DATA, REPO, gguf, versions  # noqa: E402

T = gguf.GGUFValueType
REL = os.path.join("gguf", "sample.gguf")


def main():
    path = os.path.join(DATA, REL)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w = gguf.GGUFWriter(path, "sotto-golden")
    w.add_name("gguf-sample")
    rel_script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO)
    w.add_string("sotto.golden.command", " ".join(["python", rel_script] + sys.argv[1:]))
    # gguf has no __version__, so versions() cannot see it; ask the package metadata.
    gguf_version = importlib.metadata.version("gguf")
    w.add_string("sotto.golden.versions", versions() + ", gguf==" + gguf_version)

    w.add_uint8("sample.u8", 200)
    w.add_int8("sample.i8", -100)
    w.add_uint16("sample.u16", 60000)
    w.add_int16("sample.i16", -30000)
    w.add_uint32("sample.u32", 4000000000)
    w.add_int32("sample.i32", -2000000000)
    w.add_float32("sample.f32", 0.15625)
    w.add_bool("sample.bool", True)
    w.add_string("sample.str", 'h\u00e9llo "world"')
    w.add_uint64("sample.u64", 2**63 + 5)
    w.add_int64("sample.i64", -(2**62))
    w.add_float64("sample.f64", -1.0e-300)
    w.add_key_value("sample.arr_u8", [1, 2, 255], T.ARRAY, T.UINT8)
    w.add_key_value("sample.arr_i16", [-1, 300, -32768], T.ARRAY, T.INT16)
    w.add_key_value("sample.arr_i32", list(range(-10, 10)), T.ARRAY, T.INT32)
    w.add_key_value("sample.arr_u64", [0, 2**64 - 1], T.ARRAY, T.UINT64)
    w.add_key_value("sample.arr_f32", [0.5, -0.25, 1024.0], T.ARRAY, T.FLOAT32)
    w.add_key_value("sample.arr_f64", [1.0e100, -2.5], T.ARRAY, T.FLOAT64)
    w.add_key_value("sample.arr_bool", [True, False, True], T.ARRAY, T.BOOL)
    w.add_key_value("sample.arr_str", ["a", "bc", "\u00fc"], T.ARRAY, T.STRING)

    # Values test_gguf.c recomputes: exact in f16 and f32.
    w.add_tensor("t.f32_2d", (np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1.0))
    w.add_tensor("t.f16_3d", ((np.arange(24, dtype=np.float32) - 12) * 0.25)
                 .reshape(2, 3, 4).astype(np.float16))
    special = np.array([2.0**-24, -(2.0**-14), 65504.0, np.inf, -0.0, np.nan], dtype=np.float16)
    w.add_tensor("t.f16_special", special.reshape(1, 2, 1, 3))
    w.add_tensor("t.i32", np.array([7, -8, 2**31 - 1, -(2**31)], dtype=np.int32))
    w.add_tensor("t.f32_1d", np.array([1.0, -2.0, 0.125, 3.0e38], dtype=np.float32))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
