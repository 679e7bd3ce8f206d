/* The HTTP layer's helpers on their own: the request deadline shuts down a late socket (and
 * only a late, unpaused one), and the worker pool runs every queued item, the ones queued
 * before workpool_free included. Socket pairs stand in for connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../server/deadline.h"
#include "../../../server/workpool.h"

/* 1 once the peer of fd sees end of file (the deadline shut fd down), polled up to 10 s. */
static int peer_closed(int peer) {
    for (int i = 0; i < 1000; i++) {
        char c;
        ssize_t n = recv(peer, &c, 1, MSG_DONTWAIT);
        if (n == 0)
            return 1;
        struct timespec t = {0, 10 * 1000000L};
        nanosleep(&t, NULL);
    }
    return 0;
}

static void test_deadline_shuts_down_late_sockets(void **state) {
    (void)state;
    deadlines *d;
    assert_int_equal(deadlines_create(0.05, &d), 0);
    int late[2], paused[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, late), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, paused), 0);
    deadline_conn *a = deadline_open(d, late[0]);
    deadline_conn *b = deadline_open(d, paused[0]);
    assert_non_null(a);
    assert_non_null(b);
    deadline_pause(d, b); /* being handled: no deadline */
    assert_true(peer_closed(late[1]));
    assert_true(deadline_expired_total(d) == 1);
    char c;
    assert_int_equal(recv(paused[1], &c, 1, MSG_DONTWAIT), -1); /* still open, nothing sent */
    /* its answer went out: the next request has the timeout again */
    deadline_restart(d, b);
    assert_true(peer_closed(paused[1]));
    assert_true(deadline_expired_total(d) == 2);
    deadline_close(d, a);
    deadline_close(d, b);
    deadline_close(d, NULL);
    /* one left open at the end is freed by deadlines_free */
    int extra[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, extra), 0);
    assert_non_null(deadline_open(d, extra[0]));
    deadlines_free(d);
    for (int i = 0; i < 2; i++) {
        close(late[i]);
        close(paused[i]);
        close(extra[i]);
    }
}

typedef struct job {
    workpool_item item;
    int *count;
} job;

static void run_job(workpool_item *it) {
    job *j = (job *)it;
    __atomic_add_fetch(j->count, 1, __ATOMIC_SEQ_CST);
}

static void test_workpool_runs_everything(void **state) {
    (void)state;
    workpool *p;
    assert_int_equal(workpool_create(3, &p), 0);
    enum { N = 1000 };
    static job jobs[N];
    int count = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){.item = {.run = run_job}, .count = &count};
        workpool_push(p, &jobs[i].item);
    }
    workpool_free(p); /* runs what is queued, then stops */
    assert_int_equal(count, N);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_shuts_down_late_sockets),
        cmocka_unit_test(test_workpool_runs_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
