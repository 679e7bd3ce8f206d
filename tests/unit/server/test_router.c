/* The router (method + path -> route + parameters, 404 vs 405 + Allow) and the pure request
 * rules of the HTTP layer: framing (request smuggling), Content-Type classes, cross-site
 * Origin. No server, no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../server/http_rules.h"
#include "../../../server/router.h"

/* trcd's table (as registered by main.c), in its order. */
static const char *const TABLE[][2] = {
    {"GET", "/healthz"},
    {"GET", "/readyz"},
    {"GET", "/metrics"},
    {"POST", "/v1/control"},
    {"POST", "/control"},
    {"GET", "/v1/models"},
    {"GET", "/v1/models/{name}"},
    {"DELETE", "/v1/models/{name}"},
    {"POST", "/v1/models/{name}/load"},
    {"POST", "/v1/train"},
    {"GET", "/v1/jobs/{id}"},
    {"POST", "/v1/jobs/{id}/cancel"},
    {"GET", "/{path*}"},
};
#define NT (sizeof TABLE / sizeof TABLE[0])

static router R;

static int setup(void **state) {
    (void)state;
    memset(&R, 0, sizeof R);
    for (size_t i = 0; i < NT; i++)
        if (router_add(&R, TABLE[i][0], TABLE[i][1]) != (long)i)
            return -1;
    return 0;
}

static void test_fixed_and_params(void **state) {
    (void)state;
    router_match m;
    assert_int_equal(router_find(&R, "GET", "/healthz", &m), 0);
    assert_int_equal(router_find(&R, "HEAD", "/healthz", &m), 0); /* GET answers HEAD */
    assert_int_equal(router_find(&R, "POST", "/control", &m), 4);
    assert_int_equal(router_find(&R, "GET", "/v1/models/default", &m), 6);
    assert_string_equal(router_param(&m, "name"), "default");
    assert_null(router_param(&m, "id"));
    assert_int_equal(router_find(&R, "DELETE", "/v1/models/x", &m), 7);
    assert_int_equal(router_find(&R, "POST", "/v1/jobs/abc/cancel", &m), 11);
    assert_string_equal(router_param(&m, "id"), "abc");
    /* an empty segment is not a parameter: falls to the dashboard */
    assert_int_equal(router_find(&R, "GET", "/v1/jobs/", &m), 12);
}

static void test_wildcard(void **state) {
    (void)state;
    router_match m;
    assert_int_equal(router_find(&R, "GET", "/", &m), 12);
    assert_string_equal(router_param(&m, "path"), "");
    assert_int_equal(router_find(&R, "GET", "/js/app.js", &m), 12);
    assert_string_equal(router_param(&m, "path"), "js/app.js");
    /* fixed routes win, even for a path the wildcard also matches */
    assert_int_equal(router_find(&R, "GET", "/v1/models", &m), 5);
}

static void test_405_lists_the_methods(void **state) {
    (void)state;
    router_match m;
    assert_int_equal(router_find(&R, "GET", "/v1/control", &m), -1);
    assert_string_equal(m.allow, "POST");
    assert_int_equal(router_find(&R, "PUT", "/v1/models/x", &m), -1);
    assert_string_equal(m.allow, "GET, HEAD, DELETE");
    /* the dashboard: 405 with GET, HEAD (not 404) */
    assert_int_equal(router_find(&R, "POST", "/index.html", &m), -1);
    assert_string_equal(m.allow, "GET, HEAD");
    assert_int_equal(router_find(&R, "OPTIONS", "/", &m), -1);
    assert_string_equal(m.allow, "GET, HEAD");
    /* a fixed path's methods only: the wildcard does not add GET to /v1/control's 405 */
    assert_int_equal(router_find(&R, "PUT", "/v1/control", &m), -1);
    assert_string_equal(m.allow, "POST");
}

static void test_404_and_hostile_paths(void **state) {
    (void)state;
    router_match m;
    char long_path[ROUTER_PATH_MAX + 10];
    memset(long_path, 'a', sizeof long_path);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    const char *bad[] = {"", "healthz", "*", "/a/b/c/d/e/f/g/h/i/j/k", long_path};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(router_find(&R, "GET", bad[i], &m), -1);
        assert_string_equal(m.allow, "");
    }
    char seg[ROUTER_SEG_MAX + 2];
    memset(seg, 'b', sizeof seg);
    seg[0] = '/';
    seg[sizeof seg - 1] = '\0';
    assert_int_equal(router_find(&R, "GET", seg, &m), -1);
}

static void test_bad_patterns(void **state) {
    (void)state;
    router r = {0};
    assert_int_equal(router_add(&r, "GET", "nope"), -1);
    assert_int_equal(router_add(&r, "GET", "/{x*}/tail"), -1);
    assert_int_equal(router_add(&r, "GET", "/{x"), -1);
    assert_int_equal(router_add(&r, "", "/x"), -1);
    assert_int_equal(router_add(&r, "TOOLONGMETHOD", "/x"), -1);
    assert_int_equal(router_add(&r, "GET", "/a/b/c/d/e/f/g/h/i"), -1);
    for (int i = 0; i < ROUTER_MAX_ROUTES; i++)
        assert_int_equal(router_add(&r, "GET", "/x"), i);
    assert_int_equal(router_add(&r, "GET", "/x"), -1);
}

static int framing(const char *cl1, const char *cl2, const char *te, unsigned long long *len,
                   int *chunked) {
    const char *cl[2] = {cl1, cl2}, *tes[1] = {te};
    char msg[256];
    return rules_framing(cl, cl2 ? 2 : cl1 ? 1 : 0, tes, te ? 1 : 0, len, chunked, msg, sizeof msg);
}

static void test_framing(void **state) {
    (void)state;
    unsigned long long n;
    int ch;
    assert_int_equal(framing(NULL, NULL, NULL, &n, &ch), 0);
    assert_true(n == 0 && !ch);
    assert_int_equal(framing("42", NULL, NULL, &n, &ch), 0);
    assert_true(n == 42);
    assert_int_equal(framing(" 42 ", "42", NULL, &n, &ch), 0); /* identical repeats agree */
    assert_int_equal(framing(NULL, NULL, "Chunked", &n, &ch), 0);
    assert_true(ch);
    /* smuggling */
    assert_int_equal(framing("32", "0", NULL, &n, &ch), 400);
    assert_int_equal(framing("5", NULL, "chunked", &n, &ch), 400);
    const char *bad[] = {"-1", "abc", "+33", "", "1 2", "1,1", "0x10", "9999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(framing(bad[i], NULL, NULL, &n, &ch), 400);
    const char *codings[] = {"identity", "gzip", "gzip, chunked", "chunked, gzip", "", "chunkedx"};
    for (size_t i = 0; i < sizeof codings / sizeof codings[0]; i++)
        assert_int_equal(framing(NULL, NULL, codings[i], &n, &ch), 501);
    unsigned long long v;
    assert_int_equal(rules_content_length("000123", &v), 0);
    assert_true(v == 123);
}

static void test_content_types(void **state) {
    (void)state;
    assert_int_equal(rules_content_type(NULL), CTYPE_NONE);
    assert_int_equal(rules_content_type("application/json"), CTYPE_JSON);
    assert_int_equal(rules_content_type("Application/JSON; charset=utf-8"), CTYPE_JSON);
    assert_int_equal(rules_content_type(" application/json ;x=y"), CTYPE_JSON);
    assert_int_equal(rules_content_type("application/jsonx"), CTYPE_OTHER);
    assert_int_equal(rules_content_type("application/json x"), CTYPE_OTHER);
    assert_int_equal(rules_content_type("application/octet-stream"), CTYPE_RAW);
    assert_int_equal(rules_content_type("application/x-www-form-urlencoded"), CTYPE_FORM);
    assert_int_equal(rules_content_type("multipart/form-data; boundary=x"), CTYPE_OTHER);
    assert_int_equal(rules_content_type("text/plain"), CTYPE_OTHER);
    assert_int_equal(rules_content_type(""), CTYPE_OTHER);
}

static void test_cross_site(void **state) {
    (void)state;
    assert_false(rules_cross_site(NULL, "127.0.0.1:8080"));
    assert_false(rules_cross_site("http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_false(rules_cross_site("http://LOCALHOST:8080", "localhost:8080"));
    assert_false(rules_cross_site("http://example.com", "example.com:80"));
    assert_false(rules_cross_site("https://example.com", "example.com:443"));
    assert_false(rules_cross_site("http://[::1]:8080", "[::1]:8080"));
    assert_true(rules_cross_site("http://evil.example", "127.0.0.1:8080"));
    assert_true(rules_cross_site("http://127.0.0.1:8081", "127.0.0.1:8080"));
    /* Host carries no scheme: behind a TLS proxy the page is https and Host the same name */
    assert_false(rules_cross_site("https://trc.example", "trc.example"));
    assert_true(rules_cross_site("null", "127.0.0.1:8080"));
    assert_true(rules_cross_site("file://", "127.0.0.1:8080"));
    assert_true(rules_cross_site("http://127.0.0.1:8080/x", "127.0.0.1:8080"));
    assert_true(rules_cross_site("http://127.0.0.1:8080", NULL));
    assert_true(rules_cross_site("http://127.0.0.1:80a", "127.0.0.1:80a"));
    assert_true(rules_cross_site("http://", ""));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_and_params),      cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_405_lists_the_methods), cmocka_unit_test(test_404_and_hostile_paths),
        cmocka_unit_test(test_bad_patterns),          cmocka_unit_test(test_framing),
        cmocka_unit_test(test_content_types),         cmocka_unit_test(test_cross_site),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
