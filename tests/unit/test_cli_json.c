/*
 * test_cli_json.c — the offload command's JSON reader (cli/json.h): values, escapes,
 * exact integers, and a message with the line for every kind of broken input.
 */
#include "check.h"

#include "cli/json.h"

#include <stdlib.h>

static char err[128];

TEST(values_and_lookups) {
    struct json *v = json_parse(" {\"a\": 1, \"b\": [true, false, null], \"c\": \"x\",\n"
                                "  \"d\": -2.5e3, \"big\": 18446744073709551615, \"e\": {}}\n",
                                err, sizeof err);
    CHECK(v != NULL);
    if (!v)
        return;
    CHECK(v->type == JSON_OBJECT && v->count == 6);
    CHECK_EQ_U64(json_u64(v, "a", 0), 1);
    const struct json *b = json_get(v, "b");
    CHECK(b && b->type == JSON_ARRAY && b->count == 3);
    if (b && b->count == 3)
        CHECK(b->items[0].boolean && !b->items[1].boolean && b->items[2].type == JSON_NULL);
    CHECK_STR(json_str(v, "c", NULL), "x");
    CHECK(json_double(v, "d", 0) == -2500.0);
    CHECK_EQ_U64(json_u64(v, "d", 7), 0);            /* negative: no unsigned value */
    CHECK_EQ_U64(json_u64(v, "big", 0), UINT64_MAX); /* exact, beyond a double's 2^53 */
    CHECK(json_get(v, "e") && json_get(v, "e")->count == 0);
    CHECK(json_get(v, "missing") == NULL);
    CHECK_EQ_U64(json_u64(v, "c", 9), 9); /* not a number: the fallback */
    CHECK_STR(json_str(v, "a", "fb"), "fb");
    CHECK(json_get(b, "a") == NULL); /* not an object */
    json_free(v);
}

TEST(string_escapes) {
    struct json *v =
        json_parse("\"q\\\" b\\\\ s\\/ \\n\\t \\u00e9 \\u20ac \\ud83d\\ude00\"", err, sizeof err);
    CHECK(v && v->type == JSON_STRING);
    if (v)
        CHECK_STR(v->string, "q\" b\\ s/ \n\t \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    json_free(v);
}

TEST(broken_input_says_where) {
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"", "line 1: unexpected end of file"},
        {"{\n\"a\": 1,\n}", "line 3: expected a key"},
        {"[1 2]", "line 1: expected ',' or ']'"},
        {"{\"a\" 1}", "line 1: expected ':'"},
        {"\"abc", "line 1: unterminated string"},
        {"\"a\\x\"", "line 1: bad escape '\\x'"},
        {"\"\\u12g4\"", "line 1: bad \\u escape"},
        {"\"a\tb\"", "line 1: control character in a string"},
        {"[tru]", "line 1: unexpected 'tru]'"},
        {"1e999", "line 1: bad number"},
        {"{} {}", "line 1: text after the value"},
        {"@", "line 1: unexpected '@'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct json *v = json_parse(bad[i].text, err, sizeof err);
        CHECK(v == NULL);
        CHECK_STR(err, bad[i].message);
        json_free(v);
    }
}

TEST(depth_is_limited) {
    char deep[200];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    CHECK(json_parse(deep, err, sizeof err) == NULL);
    CHECK_STR(err, "line 1: nested too deep");
}

int main(void) {
    RUN(values_and_lookups);
    RUN(string_escapes);
    RUN(broken_input_says_where);
    RUN(depth_is_limited);
    return check_summary();
}
