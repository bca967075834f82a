/*
 * trace_internal.h — internal to runtime/report: the recorder's state (trace.c) shared
 * with the writer of the document (trace_json.c). Everyone else uses trace.h.
 */
#ifndef OFFLOAD_TRACE_INTERNAL_H
#define OFFLOAD_TRACE_INTERNAL_H

#include "base/lock.h"
#include "runtime/report/trace.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_STREAMS_MAX 8          /* copy-stream tracks; more streams share the last one */
#define TRACE_STALL_DEPTH 8          /* nested stalls kept; deeper ones are counted, not drawn */
#define TRACE_ORDINAL_MAX (1u << 22) /* allocations beyond this ordinal are not traced */
#define TRACE_USES_MAX (1u << 20)    /* uses kept (40 bytes each); later ones are counted */

/* Track ids ("tid") in the file, which is also their order on screen. */
#define TID_COMPONENT 1 /* + component index */
#define TID_STREAM 1000 /* + stream track index */
#define TID_STALLS 2000
#define TID_LAUNCHES 2001

enum rec_kind { REC_STATE, REC_EVICT, REC_RESTORE, REC_STALL, REC_TURN, REC_COUNTER };
enum move_end { MOVE_OK, MOVE_FAILED, MOVE_UNFINISHED };

/* One completed span or counter sample: 56 bytes. */
struct rec {
    uint64_t ts, dur; /* ns since start */
    uint64_t bytes;   /* moved (copies), on the device (state, counter), launches (turn) */
    uint64_t ordinal; /* copies and stalls */
    uint64_t queued;  /* copies: when queued */
    int32_t component;
    int32_t other; /* stall: on whom; copy: stream track */
    uint8_t kind;
    uint8_t detail; /* state: enum trace_state; copy: enum move_end */
};

/* One tracked allocation one call used (trace_use): 40 bytes. */
struct use_rec {
    uint64_t call; /* the call's serial number (1, 2, ...): uses of one call share it */
    uint64_t ordinal, bytes, mapped;
    int32_t component;
};

struct open_state {
    bool open;
    enum trace_state state;
    uint64_t since, bytes;
};

struct open_move {
    bool open, restore;
    int component;
    unsigned track;
    uint64_t queued, bytes;
};

struct stream_track {
    const void *stream;
    uint64_t last_end;
    uint64_t evictions, restores;
};

struct open_stall {
    uint64_t since, ordinal;
    int component, on;
};

/* The recorder's state: open spans in small tables, completed ones in the ring. Guarded
 * by trace_lock (trace.c); apart from the lock itself, free_all clears it whole. */
struct trace_recorder {
    bool recording;
    char path[CONFIG_PATH_MAX];
    uint64_t (*clock)(void);
    uint64_t t0;

    struct rec *ring;
    size_t capacity, first, len;
    uint64_t dropped;

    size_t ncomp;
    char **names;
    struct open_state *comp;
    uint64_t *baseline; /* resident bytes per component as of the oldest record kept */

    struct open_move *moves; /* by ordinal */
    size_t nmoves;
    struct stream_track streams[TRACE_STREAMS_MAX];
    unsigned nstreams;

    struct open_stall stalls[TRACE_STALL_DEPTH];
    size_t nstalls, stall_overflow;

    struct {
        bool open;
        int component;
        uint64_t first, last, count;
    } turn;
    unsigned launches_since_tick;

    struct use_rec *uses; /* every call's uses, in order, up to TRACE_USES_MAX */
    size_t nuses, uses_cap;
    uint64_t calls, uses_dropped;
};

extern struct trace_recorder tr;

/* Nanoseconds since the recorder started (its clock). */
uint64_t trace_now(void);

/* Whether c is a component of the config the recorder started with. */
bool trace_valid_component(int c);

/* The Chrome trace-event JSON of what the ring holds (malloc'd), or NULL without memory.
 * trace_lock held. */
char *trace_build_json(uint64_t budget_bytes);

#endif /* OFFLOAD_TRACE_INTERNAL_H */
