/*
 * test_mapped_extents.c — memory/mapped.h's extents: buffers across program mappings,
 * learnt, merged when they overlap (never when merely adjacent), the mappings they cover
 * marked spanned and found from a pointer, forgotten with an unmap.
 */
#include "runtime/memory/mapped.h"
#include "tests/unit/check.h"

#include <stdlib.h>

#define PAGE (8ull << 20)
#define VA 0x7f0000000000ull

/* Four tracked mappings of one page each, back to back from VA, and a fifth one page
 * further on (a hole between). */
static struct allocation allocs[5];
static struct vmm_table table;

static void setup(void) {
    free(table.maps);
    free(table.extents);
    memset(&table, 0, sizeof table);
    memset(allocs, 0, sizeof allocs);
    for (unsigned i = 0; i < 5; i++) {
        CUdeviceptr base = VA + (i < 4 ? i : 5) * PAGE;
        allocs[i].base = base;
        allocs[i].size = allocs[i].mapped = PAGE;
        CHECK(vmm_mapping_add(&table, base, PAGE, NULL, &allocs[i]) == 0);
    }
}

/* The members for a pointer at p into its mapping, as a bit set of allocs' indexes. */
static unsigned seen;
static void note(void *arg, struct allocation *a) {
    (void)arg;
    seen |= 1u << (a - allocs);
}
static unsigned members_at(CUdeviceptr p) {
    seen = 0;
    long i = vmm_mapping_at(&table, p);
    CHECK(i >= 0);
    const struct vmm_mapping *m = &table.maps[i];
    vmm_extent_members(&table, p, m->base + m->size, note, NULL);
    return seen;
}

static unsigned spanned(void) {
    unsigned s = 0;
    for (unsigned i = 0; i < 5; i++)
        s |= (unsigned)allocs[i].spanned << i;
    return s;
}

TEST(inside_one_mapping_nothing_is_learnt) {
    setup();
    CHECK(vmm_extent_learn(&table, VA + 10, PAGE - 10) == 0);
    CHECK(vmm_extent_learn(&table, VA, 0) == 0);
    CHECK_EQ_U64(table.extent_count, 0);
    CHECK_EQ_U64(spanned(), 0);
}

TEST(a_buffer_across_mappings_brings_them_along) {
    setup();
    /* half a page in, to the middle of the third mapping */
    CHECK(vmm_extent_learn(&table, VA + PAGE / 2, 2 * PAGE) == 1);
    CHECK_EQ_U64(spanned(), 0x7);
    CHECK_EQ_U64(members_at(VA + PAGE / 2), 0x7);
    CHECK_EQ_U64(members_at(VA + PAGE + 5), 0x7);
    /* the part of the first mapping before the buffer: no buffer of it goes on */
    CHECK_EQ_U64(members_at(VA), 0x7); /* [VA, end of mapping 0) reaches into it */
    /* past the buffer's end in the third mapping */
    CHECK_EQ_U64(members_at(VA + 2 * PAGE + PAGE / 2), 0);
    CHECK(vmm_extent_learn(&table, VA + PAGE / 2, 2 * PAGE) == 0); /* known already */
    CHECK_EQ_U64(table.extent_count, 1);
}

TEST(adjacent_buffers_stay_apart_overlapping_ones_merge) {
    setup();
    CHECK(vmm_extent_learn(&table, VA, PAGE + PAGE / 2) == 1);            /* 0-1 */
    CHECK(vmm_extent_learn(&table, VA + PAGE + PAGE / 2, 2 * PAGE) == 1); /* 1-3 */
    CHECK_EQ_U64(table.extent_count, 2);
    CHECK_EQ_U64(members_at(VA), 0x3);                   /* the first buffer only */
    CHECK_EQ_U64(members_at(VA + PAGE + PAGE / 2), 0xe); /* the second buffer: 1-3 */
    CHECK_EQ_U64(members_at(VA + 3 * PAGE), 0xe);
    /* a copy over both ties them */
    CHECK(vmm_extent_learn(&table, VA + PAGE, PAGE + 1) == 1);
    CHECK_EQ_U64(table.extent_count, 1);
    CHECK_EQ_U64(members_at(VA + 3 * PAGE + 1), 0xf);
}

TEST(an_unmap_forgets_the_buffers_across_it) {
    setup();
    CHECK(vmm_extent_learn(&table, VA, PAGE + 1) == 1);            /* 0-1 */
    CHECK(vmm_extent_learn(&table, VA + 2 * PAGE + 1, PAGE) == 1); /* 2-3 */
    CHECK_EQ_U64(spanned(), 0xf);
    vmm_extent_forget(&table, VA + 3 * PAGE, PAGE); /* mapping 3 goes */
    CHECK_EQ_U64(table.extent_count, 1);
    CHECK_EQ_U64(spanned(), 0x3);
    CHECK_EQ_U64(members_at(VA + 2 * PAGE + 1), 0);
    CHECK_EQ_U64(members_at(VA), 0x3);
}

TEST(a_hole_or_an_untracked_mapping_is_not_a_member) {
    setup();
    /* mapping 3 and the one past the hole: two tracked mappings, the hole between */
    CHECK(vmm_extent_learn(&table, VA + 3 * PAGE, 3 * PAGE) == 1);
    CHECK_EQ_U64(spanned(), 0x18);
    CHECK_EQ_U64(members_at(VA + 3 * PAGE), 0x18);
    /* a mapping made later in the hole is covered by the extent */
    struct allocation late;
    memset(&late, 0, sizeof late);
    late.base = VA + 4 * PAGE;
    late.size = late.mapped = PAGE;
    CHECK(vmm_mapping_add(&table, late.base, PAGE, NULL, &late) == 0);
    CHECK(late.spanned);
    /* a driver mapping (untracked) counts for nothing */
    setup();
    table.maps[1].tracked = NULL;
    CHECK(vmm_extent_learn(&table, VA + PAGE, PAGE + 1) == 0); /* 1 (untracked) and 2 */
    CHECK(vmm_extent_learn(&table, VA, 2 * PAGE + 1) == 1);
    CHECK_EQ_U64(members_at(VA), 0x5);
}

int main(void) {
    RUN(inside_one_mapping_nothing_is_learnt);
    RUN(a_buffer_across_mappings_brings_them_along);
    RUN(adjacent_buffers_stay_apart_overlapping_ones_merge);
    RUN(an_unmap_forgets_the_buffers_across_it);
    RUN(a_hole_or_an_untracked_mapping_is_not_a_member);
    free(table.maps);
    free(table.extents);
    return check_summary();
}
