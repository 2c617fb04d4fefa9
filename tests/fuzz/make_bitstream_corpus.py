"""Writes the seed corpus of the bitstream fuzz target, tests/fuzz/corpus/bitstream/: .sotto
files (Ogg pages, the Sotto ID and comment headers, bit-packed codec packets) written here from
docs/bitstream.md alone, independently of the C writer. ok_*.sotto are valid and must read
without a single report; bad_*.sotto each break one rule (test_oggmap's corpus test checks
both); pkt_*.bin start with the 8 layout bytes fuzz_bitstream.c reads, then one packet. Every
file stays under 4 KB. Files found by the fuzzer are added by hand as fuzz_* and are left
alone here.

Usage: python3 tests/fuzz/make_bitstream_corpus.py   (standard library only)"""

import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "bitstream")

# ---- Ogg pages ---------------------------------------------------------------------------

CRC_TABLE = []
for i in range(256):
    r = i << 24
    for _ in range(8):
        r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
    CRC_TABLE.append(r & 0xFFFFFFFF)


def ogg_crc(data):
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ CRC_TABLE[((crc >> 24) & 0xFF) ^ b]
    return crc


def page(serial, seq, granule, packets, bos=False, eos=False, continued=False):
    """One page holding whole packets (each < 255 * 255 bytes)."""
    lacing, body = b"", b""
    for p in packets:
        n = len(p)
        lacing += b"\xff" * (n // 255) + bytes([n % 255])
        body += p
    assert len(lacing) <= 255
    flags = (1 if continued else 0) | (2 if bos else 0) | (4 if eos else 0)
    head = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, serial, seq, 0, len(lacing))
    raw = bytearray(head + lacing + body)
    struct.pack_into("<I", raw, 22, ogg_crc(raw))
    return bytes(raw)


# ---- Sotto headers and packets -----------------------------------------------------------

FLEXI = dict(sem_size=32768, sem_bits=15, ac_size=4096, ac_bits=12, max_stages=23,
             max_group_len=8, max_groups=16)
MODEL_ID = bytes(range(0xA0, 0xC0))


def id_header(version=1, codec=b"flexicodec", model=MODEL_ID, rate=16000, in_rate=44100,
              num=25, den=2, pre_skip=0, layout=FLEXI, extra=b"", magic=b"SottoHead"):
    lay = layout
    return (magic + bytes([version]) + codec.ljust(16, b"\0")[:16] + model
            + struct.pack("<IIIIIII", rate, in_rate, num, den, pre_skip, lay["sem_size"],
                          lay["ac_size"])
            + bytes([lay["sem_bits"], lay["ac_bits"], lay["max_stages"],
                     lay["max_group_len"] - 1])
            + struct.pack("<H", lay["max_groups"] - 1) + extra)


def tags_header(vendor=b"corpus", comments=(b"TITLE=seed",)):
    out = b"SottoTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(comments))
    for c in comments:
        out += struct.pack("<I", len(c)) + c
    return out


def bits_for(v):
    return v.bit_length()


class Bits:
    def __init__(self):
        self.bits = []

    def put(self, v, n):
        for i in range(n - 1, -1, -1):
            self.bits.append((v >> i) & 1)

    def bytes(self):
        b = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, b[i:i + 8])), 2) for i in range(0, len(b), 8))


def packet(lens, sem, ac, k, lay=FLEXI):
    """lens, sem: per group; ac[g][s] for s < k."""
    g = len(lens)
    if g == 0:
        return b""
    w = Bits()
    w.put(g - 1, bits_for(lay["max_groups"] - 1))
    w.put(k, bits_for(lay["max_stages"]))
    for x in lens:
        w.put(x - 1, bits_for(lay["max_group_len"] - 1))
    for x in sem:
        w.put(x, lay["sem_bits"])
    for s in range(k):
        for i in range(g):
            w.put(ac[i][s], lay["ac_bits"])
    return w.bytes()


def random_packet(rng, k, groups=None):
    g = groups or rng.randint(1, 16)
    lens = [rng.randint(1, 8) for _ in range(g)]
    sem = [rng.randrange(32768) for _ in range(g)]
    ac = [[rng.randrange(4096) for _ in range(k)] for _ in range(g)]
    return packet(lens, sem, ac, k), sum(lens) * 1280


def stream(pkts, pre_skip=0, trim=0, per_page=2, serial=0x1234, id_kwargs=None, tags=None):
    """A file: ID page, comment page, then per_page packets per page; the last page trims."""
    out = page(serial, 0, 0, [id_header(pre_skip=pre_skip, **(id_kwargs or {}))], bos=True)
    out += page(serial, 1, 0, [tags if tags is not None else tags_header()])
    seq, pos = 2, 0
    chunks = [pkts[i:i + per_page] for i in range(0, len(pkts), per_page)] or [[]]
    for ci, chunk in enumerate(chunks):
        last = ci == len(chunks) - 1
        pos += sum(n for _, n in chunk)
        data = [p for p, _ in chunk] if chunk else [b""]
        out += page(serial, seq, pos - trim if last else pos, data, eos=last)
        seq += 1
    return out


def pages_of(data):
    """Offsets of the pages of a well-formed file."""
    offs, o = [], 0
    while o < len(data):
        offs.append(o)
        nseg = data[o + 26]
        o += 27 + nseg + sum(data[o + 27:o + 27 + nseg])
    return offs + [len(data)]


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if not name.startswith("fuzz_"):
            os.remove(os.path.join(OUT, name))
    rng = random.Random(2026)
    files = {}

    # valid streams
    pk7 = [random_packet(rng, 7) for _ in range(6)]
    files["ok_k7.sotto"] = stream(pk7, trim=300)
    files["ok_k0.sotto"] = stream([random_packet(rng, 0) for _ in range(8)], per_page=3)
    files["ok_k23.sotto"] = stream([random_packet(rng, 23, groups=3) for _ in range(3)])
    files["ok_switching.sotto"] = stream([random_packet(rng, k, groups=2) for k in
                                          (0, 23, 3, 11, 1, 7, 0)], per_page=1)
    files["ok_preskip.sotto"] = stream([random_packet(rng, 2) for _ in range(4)], pre_skip=312,
                                       trim=1000)
    files["ok_empty.sotto"] = stream([])
    files["ok_minor_version.sotto"] = stream(pk7[:2], id_kwargs=dict(version=2, extra=b"\0" * 8))
    files["ok_no_comments.sotto"] = stream(pk7[:2], tags=tags_header(b"", ()))
    small = dict(sem_size=500, sem_bits=9, ac_size=0, ac_bits=0, max_stages=0, max_group_len=1,
                 max_groups=50)
    p = packet([1] * 5, [1, 2, 3, 4, 499], [[]] * 5, 0, small)
    files["ok_kmeans_layout.sotto"] = stream([(p, 5 * 320)],
                                             id_kwargs=dict(layout=small, num=50, den=1))
    # other logical streams around the Sotto one
    base = stream(pk7[:4], per_page=1)
    offs = pages_of(base)
    other_bos = page(9, 0, 0, [b"OtherHead"], bos=True)
    other_data = page(9, 1, 5, [b"xyz"])
    files["ok_multiplexed.sotto"] = (other_bos + base[:offs[3]] + other_data + base[offs[3]:])

    # broken streams
    good = files["ok_k7.sotto"]
    offs = pages_of(good)
    b = bytearray(good)
    b[offs[3] - 1] ^= 0x10
    files["bad_crc_audio.sotto"] = bytes(b)
    b = bytearray(good)
    b[40] ^= 0x01
    files["bad_crc_id.sotto"] = bytes(b)
    files["bad_truncated_mid_page.sotto"] = good[:offs[3] + 20]
    files["bad_truncated_at_page.sotto"] = good[:offs[3]]
    files["bad_truncated_headers.sotto"] = good[:offs[1] + 10]
    files["bad_garbage_between.sotto"] = good[:offs[3]] + b"junk OggS junk" + good[offs[3]:]
    files["bad_not_ogg.sotto"] = b"RIFF\x24\0\0\0WAVEfmt " + bytes(20)
    files["bad_other_codec.sotto"] = page(5, 0, 0, [b"OpusHead\x01\x01\0\0\x80\xbb\0\0\0\0\0"],
                                          bos=True) + page(5, 1, 0, [b"OpusTags"])
    files["bad_magic.sotto"] = stream(pk7[:1], id_kwargs=dict(magic=b"SottoHeap"))
    files["bad_version0.sotto"] = stream(pk7[:1], id_kwargs=dict(version=0))
    files["bad_version16.sotto"] = stream(pk7[:1], id_kwargs=dict(version=16))
    files["bad_rate.sotto"] = stream(pk7[:1], id_kwargs=dict(rate=10))
    files["bad_frame_rate.sotto"] = stream(pk7[:1], id_kwargs=dict(num=7))
    files["bad_pre_skip.sotto"] = stream(pk7[:1], pre_skip=20000)
    lie = dict(FLEXI, sem_bits=14)
    files["bad_layout.sotto"] = stream(pk7[:1], id_kwargs=dict(layout=lie))
    files["bad_tags_count.sotto"] = stream(pk7[:1], tags=b"SottoTags\0\0\0\0\xff\xff\xff\x0f")
    files["bad_tags_vendor.sotto"] = stream(pk7[:1], tags=b"SottoTags\xff\0\0\0abc\0\0\0\0")
    # a packet whose header lies about its groups, then one with an index out of range
    lying = bytearray(pk7[1][0])
    lying[0] ^= 0x80
    files["bad_packet_count.sotto"] = stream([pk7[0], (bytes(lying), pk7[1][1]), pk7[2]],
                                             per_page=1)
    over = dict(FLEXI, sem_size=20000)
    p = packet([1], [30000], [[]], 0)
    files["bad_packet_index.sotto"] = stream([(p, 1280), pk7[0]], per_page=1,
                                             id_kwargs=dict(layout=over))
    g = stream(pk7[:3], per_page=1)
    offs = pages_of(g)
    files["bad_missing_page.sotto"] = g[:offs[3]] + g[offs[4]:]
    files["bad_granule_lie.sotto"] = stream(pk7[:3], per_page=1, trim=-5000)

    # raw packets behind the fuzz target's 8 layout bytes (FlexiCodec-like: 15-bit semantic,
    # 23 stages of 9 bits, groups of 1..8, 16 per packet)
    prefix = bytes([15, 0xFF, 0x7F, 0x00, 23 + 65, 7, 15, 0])
    lay = dict(sem_size=32768, sem_bits=15, ac_size=512, ac_bits=9, max_stages=23,
               max_group_len=8, max_groups=16)
    for k in (0, 1, 7, 23):
        g = rng.randint(1, 16)
        p = packet([rng.randint(1, 8) for _ in range(g)], [rng.randrange(32768) for _ in range(g)],
                   [[rng.randrange(512) for _ in range(k)] for _ in range(g)], k, lay)
        files["pkt_k%d.bin" % k] = prefix + p
    files["pkt_flexi_k7.bin"] = pk7[0][0]

    for name, data in sorted(files.items()):
        assert len(data) < 4096, name
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d files to %s" % (len(files), os.path.relpath(OUT)))


if __name__ == "__main__":
    main()
