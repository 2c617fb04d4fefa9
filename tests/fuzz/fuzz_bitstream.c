/*
 * libFuzzer target for the Sotto bitstream: the packet unpacker (sdk/src/io/packet.c) and the
 * Ogg mapping reader (sdk/src/io/oggmap.c).
 *
 * 1. Packets: the first 8 bytes choose a layout (below); the rest is unpacked as one packet,
 *    in place (the fuzzer's buffer has the exact size, so ASan sees any read past it). A
 *    packet that unpacks must pack back to the same bytes, and the validate-only call must
 *    agree. The whole input is also unpacked with the FlexiCodec layout.
 * 2. Ogg: the whole input is read as a .sotto file through a memory read callback (read sizes
 *    vary with the last byte); every packet returned is touched (bytes, lengths, indices,
 *    positions) and its invariants checked; the reader must end within a bounded number of
 *    calls. Then, when some page's CRC does not match, the input is read once more with every
 *    complete page's CRC recomputed, so mutations inside pages get past libogg's CRC check.
 *    Build and run: docs/bitstream.md.
 *
 * Layout bytes: b0 → sem_bits = b0 % 25, sem_size = 1 + (b1 | b2 << 8 | b3 << 16) mod 2^bits;
 * b4 → max_stages = b4 % 65, ac_bits = 1 + b4 / 65 * 8 (1, 9, 17, 25 → capped at 24),
 * ac_size = 2^ac_bits - b3; b5 → max_group_len = 1 + b5; b6, b7 → max_groups =
 * 1 + (b6 | b7 << 8) % 1024. Layouts the check refuses are skipped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ogg/ogg.h>

#include "io/oggmap.h"
#include "io/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_packet(const sotto_packet_layout *l, const uint8_t *p, size_t n)
{
    size_t cap_groups = (size_t)l->max_groups, ldc = l->max_stages > 0 ? (size_t)l->max_stages : 1;
    int32_t *lens = malloc(cap_groups * sizeof(int32_t));
    int32_t *sem = malloc(cap_groups * sizeof(int32_t));
    int32_t *ac = malloc(cap_groups * ldc * sizeof(int32_t));
    if (!lens || !sem || !ac) abort();
    sotto_packet_info info, info2;
    sotto_status st;
    int rc = sotto_packet_unpack(l, p, n, lens, sem, ac, l->max_groups, (int)ldc, &info, &st);
    int rc2 = sotto_packet_unpack(l, p, n, NULL, NULL, NULL, 0, 0, &info2, NULL);
    if (rc != rc2) abort(); /* validating alone must agree */
    if (rc == SOTTO_OK) {
        if (memcmp(&info, &info2, sizeof info) != 0) abort();
        int64_t frames = 0;
        for (int g = 0; g < info.n_groups; g++) {
            if (lens[g] < 1 || lens[g] > l->max_group_len || sem[g] < 0 || sem[g] >= l->sem_size)
                abort();
            frames += lens[g];
            for (int s = 0; s < info.n_stages; s++) {
                int32_t v = ac[(size_t)g * ldc + (size_t)s];
                if (v < 0 || v >= l->ac_size) abort();
            }
        }
        if (frames != info.n_frames) abort();
        /* a valid packet packs back to the same bytes */
        uint8_t *again = malloc(n ? n : 1);
        size_t written = 0;
        if (!again) abort();
        if (sotto_packet_pack(l, info.n_groups, info.n_stages, lens, sem, ac, (int)ldc, again, n,
                              &written, &st) != SOTTO_OK ||
            written != n || (n && memcmp(again, p, n) != 0))
            abort();
        free(again);
    } else if (st.code != rc || st.message[0] == '\0') {
        abort(); /* a failure says why */
    }
    free(lens);
    free(sem);
    free(ac);
}

typedef struct mem {
    const uint8_t *p;
    size_t n, pos, chunk;
} mem;

static long mem_read(void *user, void *buf, size_t size)
{
    mem *m = user;
    size_t k = m->n - m->pos;
    if (k > size) k = size;
    if (k > m->chunk) k = m->chunk;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (long)k;
}

/* Recomputes the CRC of every complete page in p (so that mutations inside pages reach the
 * Sotto parsing instead of stopping at libogg's CRC check); 1 when a CRC changed. */
static int fix_crcs(uint8_t *p, size_t n)
{
    int changed = 0;
    size_t o = 0;
    while (o + 27 <= n) {
        if (memcmp(p + o, "OggS", 4) != 0) {
            o++;
            continue;
        }
        size_t nseg = p[o + 26], body = 0;
        if (o + 27 + nseg > n) break;
        for (size_t i = 0; i < nseg; i++)
            body += p[o + 27 + i];
        if (o + 27 + nseg + body > n) break;
        uint8_t crc[4];
        memcpy(crc, p + o + 22, 4);
        ogg_page og = {p + o, (long)(27 + nseg), p + o + 27 + nseg, (long)body};
        ogg_page_checksum_set(&og);
        changed |= memcmp(crc, p + o + 22, 4) != 0;
        o += 27 + nseg + body;
    }
    return changed;
}

static void fuzz_ogg(const uint8_t *data, size_t size)
{
    mem m = {data, size, 0, 4096};
    if (size > 0 && (data[size - 1] & 1)) m.chunk = 1 + data[size - 1] % 97u;
    sotto_oggmap_reader *r = NULL;
    sotto_status st;
    int rc = sotto_oggmap_reader_open(mem_read, &m, NULL, &r, &st);
    if (rc != SOTTO_OK) {
        if (r || st.code != rc || st.message[0] == '\0') abort();
        return;
    }
    const sotto_oggmap_head *h = sotto_oggmap_reader_head(r);
    if (sotto_oggmap_head_check(h, SOTTO_ERR_FORMAT, NULL) != SOTTO_OK) abort();
    volatile size_t touch = strlen(sotto_oggmap_reader_vendor(r));
    for (int i = 0; i < sotto_oggmap_reader_comment_count(r); i++)
        touch += strlen(sotto_oggmap_reader_comment(r, i));
    int64_t spf = sotto_oggmap_samples_per_frame(h);
    /* each call consumes input or reports once; far fewer calls than this always suffice */
    size_t limit = 4 * size + 64;
    for (size_t calls = 0;; calls++) {
        if (calls > limit) abort();
        sotto_oggmap_packet pkt;
        rc = sotto_oggmap_reader_next(r, &pkt, &st);
        if (rc == 1) break;
        if (rc == SOTTO_ERR_FORMAT) {
            if (st.message[0] == '\0') abort();
            continue;
        }
        if (rc != SOTTO_OK) abort(); /* memory input: no final errors */
        uint32_t sum = 0;
        for (size_t i = 0; i < pkt.size; i++)
            sum += pkt.data[i];
        for (int g = 0; g < pkt.info.n_groups; g++) {
            sum += (uint32_t)pkt.lens[g] + (uint32_t)pkt.sem[g];
            for (int s = 0; s < pkt.info.n_stages; s++)
                sum += (uint32_t)pkt.ac[(size_t)g * (size_t)pkt.ldc + (size_t)s];
        }
        touch += sum;
        if (pkt.n_samples != (int64_t)pkt.info.n_frames * spf || pkt.skip < 0 || pkt.keep < 0 ||
            pkt.skip + pkt.keep > pkt.n_samples || pkt.out_pos < 0 || pkt.lost_before < 0)
            abort();
    }
    sotto_oggmap_stats s;
    sotto_oggmap_reader_stats(r, &s);
    if (s.eos && s.truncated) abort();
    (void)touch;
    sotto_oggmap_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 8) {
        sotto_packet_layout l;
        memset(&l, 0, sizeof l);
        l.sem_bits = data[0] % 25;
        uint32_t v = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
        l.sem_size = (int32_t)(1 + v % (1u << l.sem_bits));
        l.max_stages = data[4] % 65;
        l.ac_bits = 1 + data[4] / 65 * 8;
        if (l.ac_bits > 24) l.ac_bits = 24;
        l.ac_size = (int32_t)((1u << l.ac_bits) - data[3]);
        l.max_group_len = 1 + data[5];
        l.max_groups = 1 + (int)(((uint32_t)data[6] | (uint32_t)data[7] << 8) % 1024u);
        if (sotto_packet_layout_check(&l, SOTTO_ERR_FORMAT, NULL) == SOTTO_OK)
            fuzz_packet(&l, data + 8, size - 8);
    }
    sotto_packet_layout flexi;
    if (sotto_packet_layout_flexicodec(&flexi, 23, NULL) != SOTTO_OK) abort();
    fuzz_packet(&flexi, data, size);
    fuzz_ogg(data, size);
    /* again with every page's CRC made valid */
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) abort();
    if (size) memcpy(fixed, data, size);
    if (fix_crcs(fixed, size)) fuzz_ogg(fixed, size);
    free(fixed);
    return 0;
}
