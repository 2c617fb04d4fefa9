"""Writes the seed corpus of the GGUF fuzz target, tests/fuzz/corpus/gguf/: small valid files
(ok_*.gguf) covering every value type, dtype and a few alignments, and hand-broken ones
(bad_*.gguf), one per validation rule. test_gguf_corpus.c parses each and expects success for
ok_* and an error for bad_*; the fuzzer starts from them. Every file stays under 4 KB.
Files found by the fuzzer are added by hand as bad_fuzz_*.gguf and are left alone here.

Usage: python3 tests/fuzz/make_gguf_corpus.py   (standard library only)"""

import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "gguf")
SAMPLE = os.path.join(HERE, "..", "data", "gguf", "sample.gguf")

# GGUF value types and ggml dtypes
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
T_F32, T_F16, T_I8, T_I16, T_I32, T_I64, T_F64, T_BF16 = 0, 1, 24, 25, 26, 27, 28, 30
DSIZE = {T_F32: 4, T_F16: 2, T_I8: 1, T_I16: 2, T_I32: 4, T_I64: 8, T_F64: 8, T_BF16: 2}
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
       BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = s(key) + struct.pack("<I", vtype)
    if vtype == STR:
        return out + s(value)
    if vtype == ARR:
        etype, items = value
        out += struct.pack("<IQ", etype, len(items))
        for it in items:
            out += s(it) if etype == STR else struct.pack(FMT[etype], it)
        return out
    return out + struct.pack(FMT[vtype], value)


def gguf(kvs=(), tensors=(), version=3, align=32, n_tensors=None, n_kv=None, data=True):
    """tensors: (name, ne innermost-first, dtype, offset or None for the next aligned one)"""
    head = b"GGUF" + struct.pack("<IQQ", version,
                                 len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    body = b"".join(kvs)
    nxt, end, placed = 0, 0, []
    for name, ne, dtype, off in tensors:
        off = nxt if off is None else off
        n = 1
        for d in ne:
            n *= d
        nbytes = n * DSIZE.get(dtype, 4)
        body += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        body += struct.pack("<IQ", dtype, off)
        if nbytes < 4096 and off < 4096:
            placed.append((off, nbytes))
            end = max(end, off + nbytes)
            nxt = (off + nbytes + align - 1) // align * align
    out = head + body
    if tensors:
        out += b"\0" * (-len(out) % align)
    if data:
        blob = bytearray(end)
        for off, nbytes in placed:
            for i in range(nbytes):
                blob[off + i] = (i * 37 + 11) & 0x7f  # finite for every float dtype
        out += bytes(blob)
    return out


SMALL_KV = [kv("general.architecture", STR, "test"), kv("general.name", STR, "small"),
            kv("test.n", I32, 42), kv("test.scale", F32, 0.5)]
SMALL_T = [("w", [3, 2], T_F32, None), ("b", [3], T_F16, None)]

RICH_KV = [
    kv("general.architecture", STR, "rich"), kv("general.alignment", U32, 64),
    kv("r.u8", U8, 200), kv("r.i8", I8, -100), kv("r.u16", U16, 60000),
    kv("r.i16", I16, -30000), kv("r.u32", U32, 4000000000), kv("r.i32", I32, -2000000000),
    kv("r.f32", F32, 0.15625), kv("r.bool", BOOL, 1), kv("r.str", STR, "h\u00e9llo \"q\"\n"),
    kv("r.u64", U64, 2**63 + 5), kv("r.i64", I64, -(2**62)), kv("r.f64", F64, 1e300),
    kv("r.arr_i32", ARR, (I32, list(range(-10, 10)))), kv("r.arr_f32", ARR, (F32, [0.5, -0.25])),
    kv("r.arr_u64", ARR, (U64, [0, 2**64 - 1])), kv("r.arr_f64", ARR, (F64, [1e300, -2.5])),
    kv("r.arr_bool", ARR, (BOOL, [1, 0])), kv("r.arr_str", ARR, (STR, ["a", "bc", ""])),
    kv("r.arr_u8", ARR, (U8, [1, 2])), kv("r.arr_i8", ARR, (I8, [-1])),
    kv("r.arr_u16", ARR, (U16, [7])), kv("r.arr_i16", ARR, (I16, [])),
    kv("r.arr_u32", ARR, (U32, [9])), kv("r.arr_i64", ARR, (I64, [-9])),
]
RICH_T = [("x.f32", [2, 1, 3, 1], T_F32, None), ("x.f16", [5], T_F16, None),
          ("x.bf16", [2, 2], T_BF16, None), ("x.i8", [3], T_I8, None),
          ("x.i16", [3], T_I16, None), ("x.i32", [3], T_I32, None),
          ("x.i64", [3], T_I64, None), ("x.f64", [3], T_F64, None)]


def patch(b, off, fmt, value):
    b = bytearray(b)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def misaligned_f32():
    """Alignment 1 and an f32 tensor whose data does not start on a multiple of 4."""
    def make(off):
        return gguf([kv("general.alignment", U32, 1)],
                    [("a", [1], T_I8, 0), ("b", [2], T_F32, off)], align=1, data=False)
    start = len(make(1))  # the offset's value does not change the header's length
    off = next(o for o in (1, 2, 3) if (start + o) % 4)
    return make(off) + bytes(off + 8)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".gguf") and not f.startswith("bad_fuzz_"):
            os.remove(os.path.join(OUT, f))
    small = gguf(SMALL_KV, SMALL_T)
    files = {
        "ok_small": small,
        "ok_rich": gguf(RICH_KV, RICH_T, align=64),
        "ok_empty": gguf(),
        "ok_v2": gguf(SMALL_KV, SMALL_T, version=2),
        "ok_align1": gguf([kv("general.alignment", U32, 1)],
                          [("a", [3], T_I8, None), ("b", [5], T_I8, None)], align=1),
        "ok_disjoint_unordered": gguf([], [("c", [8], T_F32, 64), ("d", [8], T_F32, 0),
                                           ("e", [8], T_F32, 96)]),
        "bad_magic": b"GGML" + small[4:],
        "bad_version0": patch(small, 4, "<I", 0),
        "bad_version1": patch(small, 4, "<I", 1),
        "bad_version4": patch(small, 4, "<I", 4),
        "bad_bigendian": patch(small, 4, "<I", 0x03000000),
        "bad_truncated_header": small[:20],
        "bad_truncated_kv": small[:60],
        "bad_truncated_data": small[:-1],
        "bad_lying_tensor_count": patch(small, 8, "<Q", 2**62),
        "bad_lying_kv_count": patch(small, 16, "<Q", 2**64 - 1),
        "bad_one_tensor_more": patch(small, 8, "<Q", 3),
        "bad_huge_key_len": gguf([struct.pack("<Q", 2**64 - 1) + b"abcdefgh"]),
        "bad_huge_string": gguf([s("k") + struct.pack("<IQ", STR, 2**63) + b"x" * 8]),
        "bad_huge_str_array": gguf([s("k") + struct.pack("<IIQ", ARR, STR, 2**40) + s("x")]),
        "bad_array_bytes_overflow": gguf([s("k") + struct.pack("<IIQ", ARR, F64, 2**61 + 1)
                                          + b"\0" * 8]),
        "bad_nested_array": gguf([s("k") + struct.pack("<IIQ", ARR, ARR, 1)
                                  + struct.pack("<IQi", I32, 1, 5)]),
        "bad_array_elem_type": gguf([s("k") + struct.pack("<IIQ", ARR, 13, 1) + b"\0" * 8]),
        "bad_kv_type": gguf([s("k") + struct.pack("<IQ", 13, 0)]),
        "bad_bool_value": gguf([kv("k", BOOL, 2)]),
        "bad_bool_array": gguf([kv("k", ARR, (BOOL, [1, 0, 7]))]),
        "bad_empty_key": gguf([kv("", I32, 1)]),
        "bad_nul_in_key": gguf([kv("a\0b", I32, 1)]),
        "bad_empty_tensor_name": gguf([], [("", [4], T_F32, None)]),
        "bad_dup_key": gguf([kv("k.x", I32, 1), kv("k.y", STR, "v"), kv("k.x", F32, 2.0)]),
        "bad_dup_tensor": gguf([], [("a", [4], T_F32, None), ("b", [4], T_F32, None),
                                    ("a", [4], T_F32, None)]),
        "bad_ndims0": gguf([], [("z", [], T_F32, 0)]),
        "bad_ndims5": gguf([], [("z", [1, 1, 1, 1, 1], T_F32, 0)]),
        "bad_dim_zero": gguf([], [("z", [3, 0], T_F32, 0)]),
        "bad_dim_huge": gguf([], [("z", [2**63], T_F32, 0)]),
        "bad_elems_overflow": gguf([], [("z", [2**32, 2**32], T_F32, 0)]),
        "bad_bytes_overflow": gguf([], [("z", [2**62], T_F32, 0)]),
        "bad_dtype_q4_0": gguf([], [("z", [32], 2, 0)]),
        "bad_dtype_unknown": gguf([], [("z", [4], 1000, 0)]),
        "bad_misaligned_offset": gguf([], [("a", [16], T_F32, 0), ("b", [8], T_F32, 68)]),
        "bad_past_end": gguf([], [("a", [16], T_F32, 0), ("b", [8], T_F32, 2**22)]),
        "bad_offset_wraps": gguf([], [("a", [16], T_F32, 0), ("b", [8], T_F32, 2**64 - 32)]),
        "bad_overlap": gguf([], [("a", [16], T_F32, 0), ("b", [8], T_F32, 32)]),
        "bad_alignment_3": gguf([kv("general.alignment", U32, 3)], [("a", [3], T_F32, None)]),
        "bad_alignment_0": gguf([kv("general.alignment", U32, 0)], [("a", [3], T_F32, None)]),
        "bad_alignment_huge": gguf([kv("general.alignment", U32, 2**21)], [("a", [3], T_F32, None)]),
        "bad_alignment_type": gguf([kv("general.alignment", I32, 64)], [("a", [3], T_F32, None)],
                                   align=64),
        "bad_elem_misaligned": misaligned_f32(),
    }
    for name, data in files.items():
        assert len(data) < 4096, name
        with open(os.path.join(OUT, name + ".gguf"), "wb") as f:
            f.write(data)
    if os.path.exists(SAMPLE) and os.path.getsize(SAMPLE) < 4096:
        shutil.copyfile(SAMPLE, os.path.join(OUT, "ok_python_sample.gguf"))
    print(f"wrote {len(files)} files to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
