/* trcd's listener on its own: accepted connections reach the hand-over callback, none is taken
 * while the room callback says full (until listener_wake), and after listener_close the port
 * refuses connections. Synchronised on condition variables: no timing assumptions. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../server/listener.h"

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int room;       /* what the room callback answers */
    int room_calls; /* how often it was asked */
    int handed;     /* connections handed over */
    int bad_addr;   /* a hand-over without the client's IPv4 address (checked on the main thread) */
    int full_at;    /* > 0: room turns 0 once this many are handed over (from the thread itself,
                       so no later accept can slip in before the test looks) */
    int fds[8];
} fixture;

static int hand(void *arg, int fd, const struct sockaddr *addr, socklen_t len) {
    fixture *f = arg;
    pthread_mutex_lock(&f->lock);
    f->bad_addr |= len < sizeof(struct sockaddr_in) || addr->sa_family != AF_INET;
    if (f->handed < 8)
        f->fds[f->handed] = fd;
    else
        close(fd);
    f->handed++;
    if (f->full_at > 0 && f->handed >= f->full_at)
        f->room = 0;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static int room(void *arg) {
    fixture *f = arg;
    pthread_mutex_lock(&f->lock);
    int r = f->room;
    f->room_calls++;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
    return r;
}

/* waits until *counter reaches at least n */
static void wait_for(fixture *f, const int *counter, int n) {
    pthread_mutex_lock(&f->lock);
    while (*counter < n)
        pthread_cond_wait(&f->changed, &f->lock);
    pthread_mutex_unlock(&f->lock);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void test_listener_hands_over_waits_for_room_and_closes(void **state) {
    (void)state;
    fixture f = {.lock = PTHREAD_MUTEX_INITIALIZER,
                 .changed = PTHREAD_COND_INITIALIZER,
                 .room = 1,
                 .full_at = 1};
    char err[256];
    listener *l;
    assert_int_equal(listener_open("127.0.0.1", 0, 16, &l, err, sizeof err), 0);
    int port = listener_port(l);
    assert_true(port > 0);
    assert_int_equal(listener_start(l, hand, room, &f, err, sizeof err), 0);

    int c1 = connect_to(port);
    assert_true(c1 >= 0);
    wait_for(&f, &f.handed, 1);
    /* the descriptor handed over is the server side of c1: bytes cross */
    assert_int_equal(write(f.fds[0], "x", 1), 1);
    char ch = 0;
    assert_int_equal(read(c1, &ch, 1), 1);
    assert_int_equal(ch, 'x');

    /* full (since c1's hand-over): a new client waits in the backlog, untaken, however often
     * the thread looks */
    int c2 = connect_to(port); /* wakes the poll on the socket; the thread then asks for room */
    assert_true(c2 >= 0);
    pthread_mutex_lock(&f.lock);
    int asked = f.room_calls;
    pthread_mutex_unlock(&f.lock);
    listener_wake(l); /* "a connection closed": it asks again, finds none */
    wait_for(&f, &f.room_calls, asked + 1);
    pthread_mutex_lock(&f.lock);
    assert_int_equal(f.handed, 1);
    f.room = 1;
    pthread_mutex_unlock(&f.lock);
    listener_wake(l);
    wait_for(&f, &f.handed, 2);

    /* closed: the port refuses, and the clients handed over are untouched */
    listener_close(l);
    listener_close(l); /* idempotent */
    assert_int_equal(connect_to(port), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(write(c2, "y", 1), 1);
    listener_free(l);
    pthread_mutex_lock(&f.lock);
    assert_int_equal(f.handed, 2);
    assert_false(f.bad_addr);
    pthread_mutex_unlock(&f.lock);
    for (int i = 0; i < 2; i++)
        close(f.fds[i]);
    close(c1);
    close(c2);
}

/* Out of descriptors, accept() fails with EMFILE and the connection stays in the backlog: the
 * listener waits (no busy loop on a socket that stays readable) and takes it once descriptors
 * are free again. */
static void test_listener_waits_out_descriptor_exhaustion(void **state) {
    (void)state;
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) {
        /* valgrind keeps its own descriptor limit: lowered, it is not raised again */
        skip();
    }
    fixture f = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER, .room = 1};
    char err[256];
    listener *l;
    assert_int_equal(listener_open("127.0.0.1", 0, 16, &l, err, sizeof err), 0);
    assert_int_equal(listener_start(l, hand, room, &f, err, sizeof err), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listener_port(l))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int c = socket(AF_INET, SOCK_STREAM, 0); /* made before the limit: connect needs no new one */
    assert_true(c >= 0);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0); /* the lowest free descriptor: a limit there leaves none free */
    assert_true(lowest >= 0);
    close(lowest);
    low = old;
    low.rlim_cur = (rlim_t)lowest;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    assert_int_equal(dup(0), -1);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0); /* in the backlog */
    /* the listener has tried (and asked for room) at least twice more before we restore */
    pthread_mutex_lock(&f.lock);
    int asked = f.room_calls;
    pthread_mutex_unlock(&f.lock);
    wait_for(&f, &f.room_calls, asked + 2);
    pthread_mutex_lock(&f.lock);
    assert_int_equal(f.handed, 0);
    pthread_mutex_unlock(&f.lock);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    int probe = dup(0); /* descriptors are free again (else the wait below would never end) */
    assert_true(probe >= 0);
    close(probe);
    wait_for(&f, &f.handed, 1);
    listener_free(l);
    close(f.fds[0]);
    close(c);
}

static void test_listener_reports_bad_addresses(void **state) {
    (void)state;
    char err[256];
    listener *l = NULL;
    assert_int_equal(listener_open("not a host name", 0, 16, &l, err, sizeof err), -1);
    assert_null(l);
    assert_non_null(strstr(err, "cannot resolve --host not a host name"));
    /* a port in use: the second bind fails, naming the address */
    listener *a;
    assert_int_equal(listener_open("127.0.0.1", 0, 16, &a, err, sizeof err), 0);
    int port = listener_port(a);
    assert_int_equal(listener_open("127.0.0.1", port, 16, &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
    assert_non_null(strstr(err, strerror(EADDRINUSE)));
    listener_free(a); /* never started: closes and frees */
    listener_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_hands_over_waits_for_room_and_closes),
        cmocka_unit_test(test_listener_waits_out_descriptor_exhaustion),
        cmocka_unit_test(test_listener_reports_bad_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
