/*
 * Sotto codec packets (see packet.h for the bit layout). Packing checks every value against
 * the layout before a bit is written; unpacking checks the header, then that the byte count
 * is exactly what the header implies, before any field is read, then every field and the
 * padding. The bit reader is bounds-checked on its own as well, so a wrong size computation
 * could never read outside the caller's bytes.
 */
#include "io/packet.h"

#include <inttypes.h>
#include <string.h>

/* FlexiCodec (models.md §1.7, §1.8, §1.5). */
#define FLEXI_FSQ_SIZE 32768
#define FLEXI_RVQ_SIZE 4096
#define FLEXI_MAX_GROUP_LEN 8

/* ---- bit writer / reader ------------------------------------------------------------------ */

void sotto_bitwriter_init(sotto_bitwriter *w, uint8_t *p, size_t cap)
{
    w->p = p;
    w->cap = p ? cap : 0;
    w->pos = 0;
    w->overflow = 0;
}

void sotto_bitwriter_put(sotto_bitwriter *w, uint32_t v, int bits)
{
    if (bits <= 0 || w->overflow) return;
    if (bits > 32 || (uint64_t)bits > (uint64_t)w->cap * 8u - w->pos) {
        w->overflow = 1;
        return;
    }
    for (int i = bits - 1; i >= 0; i--) {
        size_t byte = (size_t)(w->pos >> 3);
        int shift = 7 - (int)(w->pos & 7u);
        if (shift == 7) w->p[byte] = 0;
        w->p[byte] |= (uint8_t)(((v >> i) & 1u) << shift);
        w->pos++;
    }
}

void sotto_bitreader_init(sotto_bitreader *r, const uint8_t *p, size_t size)
{
    r->p = p;
    r->size = p ? size : 0;
    r->pos = 0;
    r->overrun = 0;
}

uint32_t sotto_bitreader_get(sotto_bitreader *r, int bits)
{
    if (bits <= 0 || r->overrun) return 0;
    if (bits > 32 || (uint64_t)bits > (uint64_t)r->size * 8u - r->pos) {
        r->overrun = 1;
        return 0;
    }
    uint32_t v = 0;
    for (int i = 0; i < bits; i++) {
        size_t byte = (size_t)(r->pos >> 3);
        int shift = 7 - (int)(r->pos & 7u);
        v = (v << 1) | ((uint32_t)(r->p[byte] >> shift) & 1u);
        r->pos++;
    }
    return v;
}

/* ---- layout ------------------------------------------------------------------------------ */

int sotto_packet_bits_for(uint32_t max_value)
{
    int bits = 0;
    while (bits < 32 && (max_value >> bits) != 0)
        bits++;
    return bits;
}

/* Field widths of a checked layout. */
typedef struct widths {
    int count, stage, len, sem, ac;
} widths;

static widths layout_widths(const sotto_packet_layout *l)
{
    widths w;
    w.count = sotto_packet_bits_for((uint32_t)(l->max_groups - 1));
    w.stage = sotto_packet_bits_for((uint32_t)l->max_stages);
    w.len = sotto_packet_bits_for((uint32_t)(l->max_group_len - 1));
    w.sem = l->sem_bits;
    w.ac = l->max_stages > 0 ? l->ac_bits : 0;
    return w;
}

static int check_index(const char *what, int32_t size, int bits, int code, sotto_status *st)
{
    const int32_t max_size = (int32_t)1 << SOTTO_PACKET_MAX_INDEX_BITS;
    if (size < 1 || size > max_size)
        return sotto_status_set(st, code,
                                "packet layout: %s codebook size %" PRId32 " outside 1..%" PRId32,
                                what, size, max_size);
    int need = sotto_packet_bits_for((uint32_t)(size - 1));
    if (bits < need || bits > SOTTO_PACKET_MAX_INDEX_BITS)
        return sotto_status_set(st, code,
                                "packet layout: %d bits per %s index, need %d..%d "
                                "for a codebook of %" PRId32,
                                bits, what, need, SOTTO_PACKET_MAX_INDEX_BITS, size);
    return SOTTO_OK;
}

int sotto_packet_layout_check(const sotto_packet_layout *l, int bad_code, sotto_status *st)
{
    if (!l) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "packet layout: NULL");
    int rc = check_index("semantic", l->sem_size, l->sem_bits, bad_code, st);
    if (rc != SOTTO_OK) return rc;
    if (l->max_stages < 0 || l->max_stages > SOTTO_PACKET_MAX_STAGES)
        return sotto_status_set(st, bad_code, "packet layout: %d acoustic stages outside 0..%d",
                                l->max_stages, SOTTO_PACKET_MAX_STAGES);
    if (l->max_stages > 0) {
        rc = check_index("acoustic", l->ac_size, l->ac_bits, bad_code, st);
        if (rc != SOTTO_OK) return rc;
    } else if (l->ac_size < 0 || l->ac_bits < 0 || l->ac_bits > SOTTO_PACKET_MAX_INDEX_BITS) {
        return sotto_status_set(
            st, bad_code, "packet layout: acoustic codebook size %" PRId32 " / %d bits invalid",
            l->ac_size, l->ac_bits);
    }
    if (l->max_group_len < 1 || l->max_group_len > SOTTO_PACKET_MAX_GROUP_LEN)
        return sotto_status_set(st, bad_code, "packet layout: group length %d outside 1..%d",
                                l->max_group_len, SOTTO_PACKET_MAX_GROUP_LEN);
    if (l->max_groups < 1 || l->max_groups > SOTTO_PACKET_MAX_GROUPS)
        return sotto_status_set(st, bad_code,
                                "packet layout: %d groups per packet outside "
                                "1..%d",
                                l->max_groups, SOTTO_PACKET_MAX_GROUPS);
    return SOTTO_OK;
}

int sotto_packet_layout_init(sotto_packet_layout *l, int32_t sem_size, int32_t ac_size,
                             int max_stages, int max_group_len, int max_groups, sotto_status *st)
{
    if (!l) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "packet layout: NULL");
    memset(l, 0, sizeof *l);
    l->sem_size = sem_size;
    l->sem_bits = sem_size >= 1 ? sotto_packet_bits_for((uint32_t)(sem_size - 1)) : 0;
    l->ac_size = ac_size;
    l->ac_bits = ac_size >= 1 ? sotto_packet_bits_for((uint32_t)(ac_size - 1)) : 0;
    l->max_stages = max_stages;
    l->max_group_len = max_group_len;
    l->max_groups = max_groups;
    return sotto_packet_layout_check(l, SOTTO_ERR_INVALID_ARG, st);
}

int sotto_packet_layout_flexicodec(sotto_packet_layout *l, int max_stages, sotto_status *st)
{
    return sotto_packet_layout_init(l, FLEXI_FSQ_SIZE, FLEXI_RVQ_SIZE, max_stages,
                                    FLEXI_MAX_GROUP_LEN, SOTTO_PACKET_FLEXICODEC_GROUPS, st);
}

/* ---- sizes ------------------------------------------------------------------------------- */

/* Bits of a packet of a checked layout with counts in range. */
static int64_t packet_bits(const widths *w, int n_groups, int n_stages)
{
    if (n_groups == 0) return 0;
    int64_t per_group = (int64_t)w->len + w->sem + (int64_t)n_stages * w->ac;
    return (int64_t)w->count + w->stage + (int64_t)n_groups * per_group;
}

int64_t sotto_packet_bits(const sotto_packet_layout *l, int n_groups, int n_stages)
{
    if (sotto_packet_layout_check(l, SOTTO_ERR_INVALID_ARG, NULL) != SOTTO_OK || n_groups < 0 ||
        n_groups > l->max_groups || n_stages < 0 || n_stages > l->max_stages)
        return SOTTO_ERR_INVALID_ARG;
    widths w = layout_widths(l);
    return packet_bits(&w, n_groups, n_stages);
}

int sotto_packet_size(const sotto_packet_layout *l, int n_groups, int n_stages, size_t *bytes)
{
    if (!bytes) return SOTTO_ERR_INVALID_ARG;
    int64_t bits = sotto_packet_bits(l, n_groups, n_stages);
    if (bits < 0) return (int)bits;
    *bytes = (size_t)((bits + 7) / 8);
    return SOTTO_OK;
}

/* ---- pack -------------------------------------------------------------------------------- */

int sotto_packet_pack(const sotto_packet_layout *l, int n_groups, int n_stages, const int32_t *lens,
                      const int32_t *sem, const int32_t *ac, int ldc, uint8_t *out, size_t cap,
                      size_t *written, sotto_status *st)
{
    if (written) *written = 0;
    int rc = sotto_packet_layout_check(l, SOTTO_ERR_INVALID_ARG, st);
    if (rc != SOTTO_OK) return rc;
    if (!written)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "packet pack: NULL size output");
    if (n_groups < 0 || n_groups > l->max_groups)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "packet pack: %d groups outside "
                                "0..%d",
                                n_groups, l->max_groups);
    if (n_stages < 0 || n_stages > l->max_stages)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "packet pack: %d stages outside "
                                "0..%d",
                                n_stages, l->max_stages);
    if (n_groups > 0 && (!lens || !sem))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "packet pack: NULL lengths or "
                                "semantic indices");
    if (n_groups > 0 && n_stages > 0 && (!ac || ldc < n_stages))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "packet pack: acoustic indices "
                                "NULL or stride %d < %d stages",
                                ldc, n_stages);
    for (int g = 0; g < n_groups; g++) {
        if (lens[g] < 1 || lens[g] > l->max_group_len)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "packet pack: group %d length "
                                    "%" PRId32 " outside 1..%d",
                                    g, lens[g], l->max_group_len);
        if (sem[g] < 0 || sem[g] >= l->sem_size)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "packet pack: group %d semantic "
                                    "index %" PRId32 " outside 0..%" PRId32,
                                    g, sem[g], l->sem_size - 1);
        for (int s = 0; s < n_stages; s++) {
            int32_t v = ac[(size_t)g * (size_t)ldc + (size_t)s];
            if (v < 0 || v >= l->ac_size)
                return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                        "packet pack: group %d "
                                        "stage %d index %" PRId32 " outside 0..%" PRId32,
                                        g, s, v, l->ac_size - 1);
        }
    }
    widths w = layout_widths(l);
    size_t need = (size_t)((packet_bits(&w, n_groups, n_stages) + 7) / 8);
    if (need > cap || (need > 0 && !out))
        return sotto_status_set(st, SOTTO_ERR_BUFFER_TOO_SMALL,
                                "packet pack: %zu bytes "
                                "needed, buffer holds %zu",
                                need, out ? cap : 0);
    if (n_groups == 0) return SOTTO_OK;

    sotto_bitwriter bw;
    sotto_bitwriter_init(&bw, out, need);
    sotto_bitwriter_put(&bw, (uint32_t)(n_groups - 1), w.count);
    sotto_bitwriter_put(&bw, (uint32_t)n_stages, w.stage);
    for (int g = 0; g < n_groups; g++)
        sotto_bitwriter_put(&bw, (uint32_t)(lens[g] - 1), w.len);
    for (int g = 0; g < n_groups; g++)
        sotto_bitwriter_put(&bw, (uint32_t)sem[g], w.sem);
    for (int s = 0; s < n_stages; s++)
        for (int g = 0; g < n_groups; g++)
            sotto_bitwriter_put(&bw, (uint32_t)ac[(size_t)g * (size_t)ldc + (size_t)s], w.ac);
    if (bw.overflow || (bw.pos + 7) / 8 != need)
        return sotto_status_set(st, SOTTO_ERR_INTERNAL, "packet pack: size mismatch");
    /* the writer zeroes each byte it starts, so the padding bits are already 0 */
    *written = need;
    return SOTTO_OK;
}

/* ---- unpack ------------------------------------------------------------------------------ */

int sotto_packet_unpack(const sotto_packet_layout *l, const uint8_t *data, size_t size,
                        int32_t *lens, int32_t *sem, int32_t *ac, int max_groups, int ldc,
                        sotto_packet_info *info, sotto_status *st)
{
    if (info) memset(info, 0, sizeof *info);
    int rc = sotto_packet_layout_check(l, SOTTO_ERR_INVALID_ARG, st);
    if (rc != SOTTO_OK) return rc;
    if (!data && size > 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "packet unpack: NULL data");
    if (max_groups < 0 || ldc < 0 || ((lens || sem || ac) && max_groups == 0))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "packet unpack: output capacity "
                                "%d groups, stride %d",
                                max_groups, ldc);
    if (size == 0) return SOTTO_OK; /* the empty packet: no groups */

    widths w = layout_widths(l);
    sotto_bitreader br;
    sotto_bitreader_init(&br, data, size);
    int n_groups = (int)sotto_bitreader_get(&br, w.count) + 1;
    int n_stages = (int)sotto_bitreader_get(&br, w.stage);
    if (br.overrun)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "packet: %zu byte(s) cannot hold the "
                                "%d-bit header",
                                size, w.count + w.stage);
    if (n_groups > l->max_groups)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "packet: %d groups, the layout allows "
                                "%d",
                                n_groups, l->max_groups);
    if (n_stages > l->max_stages)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "packet: %d acoustic stages, the "
                                "layout allows %d",
                                n_stages, l->max_stages);
    size_t need = (size_t)((packet_bits(&w, n_groups, n_stages) + 7) / 8);
    if (size != need)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "packet: %zu bytes, its header (%d "
                                "groups, %d stages) needs %zu",
                                size, n_groups, n_stages, need);
    if ((lens || sem || ac) && n_groups > max_groups)
        return sotto_status_set(st, SOTTO_ERR_BUFFER_TOO_SMALL,
                                "packet unpack: %d groups, "
                                "room for %d",
                                n_groups, max_groups);
    if (ac && n_stages > ldc)
        return sotto_status_set(st, SOTTO_ERR_BUFFER_TOO_SMALL,
                                "packet unpack: %d stages, "
                                "stride %d",
                                n_stages, ldc);

    int64_t frames = 0;
    for (int g = 0; g < n_groups; g++) {
        int32_t len = (int32_t)sotto_bitreader_get(&br, w.len) + 1;
        if (len > l->max_group_len)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "packet: group %d has %" PRId32 " frames, the layout allows %d",
                                    g, len, l->max_group_len);
        frames += len;
        if (lens) lens[g] = len;
    }
    for (int g = 0; g < n_groups; g++) {
        int32_t v = (int32_t)sotto_bitreader_get(&br, w.sem);
        if (v >= l->sem_size)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "packet: group %d semantic index %" PRId32
                                    " outside 0..%" PRId32,
                                    g, v, l->sem_size - 1);
        if (sem) sem[g] = v;
    }
    for (int s = 0; s < n_stages; s++) {
        for (int g = 0; g < n_groups; g++) {
            int32_t v = (int32_t)sotto_bitreader_get(&br, w.ac);
            if (v >= l->ac_size)
                return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                        "packet: group %d stage %d index "
                                        "%" PRId32 " outside 0..%" PRId32,
                                        g, s, v, l->ac_size - 1);
            if (ac) ac[(size_t)g * (size_t)ldc + (size_t)s] = v;
        }
    }
    int pad = (int)((uint64_t)size * 8u - br.pos);
    if (sotto_bitreader_get(&br, pad) != 0)
        return sotto_status_set(st, SOTTO_ERR_FORMAT, "packet: non-zero padding bits");
    if (br.overrun || br.pos != (uint64_t)size * 8u)
        return sotto_status_set(st, SOTTO_ERR_INTERNAL, "packet unpack: size mismatch");
    if (info) {
        info->n_groups = n_groups;
        info->n_stages = n_stages;
        info->n_frames = (int)frames;
    }
    return SOTTO_OK;
}
