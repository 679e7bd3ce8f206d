/* SHA-256 against the FIPS 180-4 / NIST test vectors, and streaming equals one-shot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../server/sha256.h"

static void test_vectors(void **state) {
    (void)state;
    char hex[65];
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a_streaming(void **state) {
    (void)state;
    size_t n = 1000000;
    char *a = malloc(n);
    assert_non_null(a);
    memset(a, 'a', n);
    sha256_ctx c;
    uint8_t d1[32], d2[32];
    sha256_init(&c);
    for (size_t off = 0; off < n;) { /* odd chunk sizes cross block boundaries */
        size_t take = n - off < 997 ? n - off : 997;
        sha256_update(&c, a + off, take);
        off += take;
    }
    sha256_final(&c, d1);
    sha256_init(&c);
    sha256_update(&c, a, n);
    sha256_final(&c, d2);
    assert_memory_equal(d1, d2, 32);
    char hex[65];
    sha256_hex(a, n, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_million_a_streaming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
