/*
 * Error strings, status filling, the version string and the application log hook. The log
 * hook is the library's only global mutable state (set once by the application before use).
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#ifndef SOTTO_VERSION_STRING
#define SOTTO_VERSION_STRING "0.0.0"
#endif

const char *sotto_strerror(int err)
{
    switch (err) {
    case SOTTO_OK: return "success";
    case SOTTO_ERR_INVALID_ARG: return "invalid argument";
    case SOTTO_ERR_OUT_OF_MEMORY: return "out of memory";
    case SOTTO_ERR_IO: return "input/output error";
    case SOTTO_ERR_FORMAT: return "malformed data";
    case SOTTO_ERR_UNSUPPORTED: return "unsupported";
    case SOTTO_ERR_BUFFER_TOO_SMALL: return "output buffer too small";
    case SOTTO_ERR_MODEL: return "model is missing or has a wrong tensor or parameter";
    case SOTTO_ERR_STATE: return "call not valid in the object's state";
    case SOTTO_ERR_BAD_AUDIO: return "invalid audio samples (NaN or Inf)";
    case SOTTO_ERR_DEVICE: return "GPU device error";
    case SOTTO_ERR_INTERNAL: return "internal error";
    default: return "unknown error code";
    }
}

const char *sotto_version_string(void)
{
    return SOTTO_VERSION_STRING;
}

static sotto_log_fn g_log_fn;
static void *g_log_user;

void sotto_log_set_callback(sotto_log_fn fn, void *user)
{
    g_log_fn = fn;
    g_log_user = user;
}

void sotto_log(sotto_log_level level, const char *fmt, ...)
{
    if (!g_log_fn) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}

int sotto_status_setv(sotto_status *st, int code, const char *fmt, va_list ap)
{
    if (st) {
        st->code = code;
        vsnprintf(st->message, sizeof st->message, fmt, ap);
    }
    return code;
}

int sotto_status_set(sotto_status *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sotto_status_setv(st, code, fmt, ap);
    va_end(ap);
    return code;
}

void sotto_status_clear(sotto_status *st)
{
    if (st) {
        st->code = SOTTO_OK;
        st->message[0] = '\0';
    }
}
