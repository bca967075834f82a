/*
 * test_stored_pointers.c — what liboffload remembers of the pointers a program uploads
 * into device memory: only tracked addresses, at 8-byte-aligned device offsets, replaced
 * word by word (tracked tables) or upload by upload (untracked ones), split across
 * allocations, forgotten with the memory.
 */
#include "runtime/launch/stored_pointers.h"
#include "tests/unit/check.h"

#include <stdlib.h>

#define SHIFT 21 /* 2 MiB granules */
#define GRAN (1ull << SHIFT)

static struct registry reg;
static struct stored_pointers sp;
static struct allocation *table, *next, *x, *y;

static struct allocation *make(CUdeviceptr base, size_t size) {
    struct allocation *a = calloc(1, sizeof *a);
    a->base = base;
    a->size = size;
    a->mapped = (size + GRAN - 1) & ~(GRAN - 1);
    CHECK(registry_add(&reg, a) == 0);
    return a;
}

static void setup(void) {
    sp = (struct stored_pointers){0};
    registry_init(&reg, SHIFT);
    table = make(0x7f0000000000ull, GRAN);
    next = make(table->base + GRAN, GRAN); /* right after the table */
    x = make(0x7f0100000000ull, 4 * GRAN);
    y = make(0x7f0200000000ull, GRAN);
}

static void teardown(void) {
    struct allocation *all[] = {table, next, x, y};
    for (int i = 0; i < 4; i++) {
        registry_remove(&reg, all[i]);
        free(all[i]->stored);
        free(all[i]);
    }
    registry_destroy(&reg);
}

TEST(only_tracked_addresses_at_aligned_device_offsets) {
    setup();
    /* x's interior, a float pair, y, an address just past y, x again */
    CUdeviceptr words[] = {x->base + 12345, 0x3f8000003f800000ull, y->base, y->base + GRAN,
                           x->base};
    stored_pointers_note_upload(&sp, &reg, table->base + 64, words, sizeof words);
    CHECK_EQ_U64(table->stored_count, 3);
    CHECK_EQ_U64(table->stored[0].offset, 64);
    CHECK_EQ_U64(table->stored[0].value, x->base + 12345);
    CHECK_EQ_U64(table->stored[1].offset, 80);
    CHECK_EQ_U64(table->stored[1].value, y->base);
    CHECK_EQ_U64(table->stored[2].offset, 96);
    /* a destination 4 bytes off the 8-byte grid: the device's words start 4 bytes in */
    unsigned char host[20] = {0};
    CUdeviceptr v = y->base + 8;
    memcpy(host + 4, &v, sizeof v);
    stored_pointers_note_upload(&sp, &reg, table->base + 1028, host, sizeof host);
    CHECK_EQ_U64(table->stored_count, 4);
    CHECK_EQ_U64(table->stored[3].offset, 1032);
    CHECK_EQ_U64(table->stored[3].value, y->base + 8);
    teardown();
}

TEST(an_upload_replaces_the_words_it_covers_and_keeps_the_others) {
    setup();
    CUdeviceptr first[] = {x->base, x->base + 8, x->base + 16, x->base + 24};
    stored_pointers_note_upload(&sp, &reg, table->base, first, sizeof first);
    CUdeviceptr middle[] = {y->base, 7};
    stored_pointers_note_upload(&sp, &reg, table->base + 8, middle, sizeof middle);
    CHECK_EQ_U64(table->stored_count, 3);
    CHECK_EQ_U64(table->stored[0].value, x->base);
    CHECK_EQ_U64(table->stored[1].value, y->base);
    CHECK_EQ_U64(table->stored[1].offset, 8);
    CHECK_EQ_U64(table->stored[2].value, x->base + 24);
    CHECK_EQ_U64(sp.holders, 1);
    CHECK(stored_pointers_any(&sp));
    stored_pointers_forget(&sp, table);
    CHECK_EQ_U64(table->stored_count, 0);
    CHECK_EQ_U64(sp.holders, 0);
    CHECK(!stored_pointers_any(&sp));
    teardown();
}

TEST(an_upload_across_two_allocations_is_split) {
    setup();
    CUdeviceptr words[] = {x->base, y->base};
    stored_pointers_note_upload(&sp, &reg, table->base + GRAN - 8, words, sizeof words);
    CHECK_EQ_U64(table->stored_count, 1);
    CHECK_EQ_U64(table->stored[0].value, x->base);
    CHECK_EQ_U64(next->stored_count, 1);
    CHECK_EQ_U64(next->stored[0].offset, 0);
    CHECK_EQ_U64(next->stored[0].value, y->base);
    CHECK_EQ_U64(sp.holders, 2);
    /* rewritten without pointers: the table holds none any more */
    CUdeviceptr zeros[2] = {0, 0};
    stored_pointers_note_upload(&sp, &reg, table->base + GRAN - 8, zeros, sizeof zeros);
    CHECK_EQ_U64(table->stored_count, 0);
    CHECK_EQ_U64(next->stored_count, 0);
    CHECK_EQ_U64(sp.holders, 0);
    teardown();
}

TEST(untracked_tables_replace_what_they_overlap_and_go_with_their_memory) {
    setup();
    const CUdeviceptr small = 0x500000000ull; /* untracked memory */
    CUdeviceptr ab[] = {x->base, y->base};
    stored_pointers_note_upload(&sp, &reg, small, ab, sizeof ab);
    stored_pointers_note_upload(&sp, &reg, small + 256, ab, sizeof ab);
    CUdeviceptr nothing[] = {1, 2};
    stored_pointers_note_upload(&sp, &reg, small + 512, nothing, sizeof nothing);
    CHECK_EQ_U64(sp.table_count, 2); /* the upload without tracked addresses is not kept */
    CHECK_EQ_U64(sp.holders, 0);
    CHECK(stored_pointers_any(&sp));
    const struct upload_table *found = stored_pointers_find_untracked(&sp, small + 8);
    CHECK(found && found->count == 2 && found->values[1] == y->base);
    CHECK(stored_pointers_find_untracked(&sp, small + 16) == NULL);
    CHECK(stored_pointers_find_untracked(&sp, small - 1) == NULL);
    /* rewritten in part: the new upload replaces the whole old one */
    CUdeviceptr only_x[] = {x->base};
    stored_pointers_note_upload(&sp, &reg, small + 8, only_x, sizeof only_x);
    CHECK_EQ_U64(sp.table_count, 2);
    CHECK(stored_pointers_find_untracked(&sp, small) == NULL);
    found = stored_pointers_find_untracked(&sp, small + 8);
    CHECK(found && found->count == 1 && found->values[0] == x->base);
    stored_pointers_forget_untracked(&sp, small, 64); /* the program freed it */
    CHECK_EQ_U64(sp.table_count, 1);
    CHECK(stored_pointers_find_untracked(&sp, small + 256) != NULL);
    stored_pointers_clear_untracked(&sp);
    CHECK_EQ_U64(sp.table_count, 0);
    CHECK(!stored_pointers_any(&sp));
    teardown();
}

int main(void) {
    RUN(only_tracked_addresses_at_aligned_device_offsets);
    RUN(an_upload_replaces_the_words_it_covers_and_keeps_the_others);
    RUN(an_upload_across_two_allocations_is_split);
    RUN(untracked_tables_replace_what_they_overlap_and_go_with_their_memory);
    return check_summary();
}
