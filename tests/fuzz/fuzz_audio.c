/*
 * libFuzzer target for audio file reading (sdk/src/io/audio.c over libsndfile and soxr).
 * The input bytes become an in-memory file (memfd) that is opened by its /proc/self/fd path,
 * so the whole path-based API is exercised: header scan, format checks, the WAV truncation
 * check, decoding, the NaN/Inf policy, down-mix and resampling. Each input is read
 *   1. whole, at the file's rate, rejecting non-finite samples;
 *   2. whole, resampled to 16 kHz, with truncation allowed and non-finite samples zeroed;
 *   3. with the streaming reader in odd-sized pieces, resampled to 24 kHz.
 * Invariants checked: a success returns a buffer and the declared count, every delivered
 * sample is finite and within SOTTO_AUDIO_MAX_ABS_SAMPLE (after the down-mix), a failure
 * returns no buffer and carries an error code and a message; the reader's piece counts add up
 * to what its info reports. max_frames bounds the work per input (absurd header sizes must
 * still be refused or bounded without allocating what they claim).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sotto/sotto_audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_samples(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || fabsf(x[i]) > SOTTO_AUDIO_MAX_ABS_SAMPLE) abort();
}

static void read_whole(const char *path, int rate, int lenient)
{
    sotto_audio_read_params p = sotto_audio_default_read_params();
    p.target_rate_hz = rate;
    p.max_frames = 1 << 18;
    if (lenient) {
        p.allow_truncated = 1;
        p.nonfinite = SOTTO_AUDIO_NONFINITE_ZERO;
    }
    float *x = NULL;
    int64_t n = -1;
    sotto_audio_info info;
    sotto_status st;
    int rc = sotto_audio_read_file(path, &p, &x, &n, &info, &st);
    if (rc == SOTTO_OK) {
        if (!x || n < 0 || n != info.out_samples) abort();
        check_samples(x, n);
    } else {
        if (x || rc > 0 || st.code != rc || !st.message[0]) abort();
    }
    sotto_audio_free(x, NULL);
}

static void read_stream(const char *path)
{
    sotto_audio_read_params p = sotto_audio_default_read_params();
    p.target_rate_hz = 24000;
    p.max_frames = 1 << 18;
    p.nonfinite = SOTTO_AUDIO_NONFINITE_ZERO;
    sotto_audio_reader *r = NULL;
    sotto_audio_info info;
    sotto_status st;
    if (sotto_audio_reader_open(path, &p, &r, &info, &st) != SOTTO_OK) {
        if (r || !st.message[0]) abort();
        return;
    }
    float buf[1237];
    int64_t total = 0, got;
    while ((got = sotto_audio_reader_read(r, buf, (int64_t)(sizeof buf / sizeof buf[0]))) > 0) {
        check_samples(buf, got);
        total += got;
    }
    if (sotto_audio_reader_info(r, &info) != SOTTO_OK) abort();
    if (got == 0 && info.out_samples >= 0 && total != info.out_samples) abort();
    if (got < 0 && !sotto_audio_reader_last_error(r)[0]) abort();
    sotto_audio_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("sotto-fuzz-audio", 0);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    read_whole(path, 0, 0);
    read_whole(path, 16000, 1);
    read_stream(path);
    close(fd);
    return 0;
}
