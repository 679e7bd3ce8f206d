/* trcd's listening socket and its accepting thread (see listener.h for why it is ours). */
#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

enum {
    ACCEPT_BATCH = 64, /* connections taken per wake-up, so a burst does not starve the stop */
    RETRY_MS = 100,    /* after running out of descriptors or memory: try again this soon */
};

struct listener {
    int fd;   /* listening socket, -1 once closed */
    int wake; /* eventfd: stop, or room may be free */
    int port;
    pthread_t thread;
    int started;
    int complained; /* out of descriptors or memory was logged; reset by the next accept */
    atomic_int stopping;
    atomic_int waiting; /* the thread waits for room: closes must wake it */
    listener_hand_fn hand;
    listener_room_fn room;
    void *arg;
};

static int open_socket(const struct addrinfo *ai, int backlog) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    /* a restart must not wait for the last run's TIME_WAIT connections */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) ||
        (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on)) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, backlog)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

int listener_open(const char *host, int port, int backlog, listener **out, char *err,
                  size_t errlen) {
    *out = NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc) {
        hints.ai_flags = AI_PASSIVE; /* a host name, e.g. localhost */
        rc = getaddrinfo(host, service, &hints, &ai);
    }
    if (rc || !ai) {
        snprintf(err, errlen, "cannot resolve --host %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = open_socket(ai, backlog);
    int e = errno;
    freeaddrinfo(ai);
    listener *l = fd < 0 ? NULL : calloc(1, sizeof *l);
    int wake = l ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    if (wake < 0) {
        if (fd >= 0)
            e = errno ? errno : ENOMEM;
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(e));
        if (fd >= 0)
            close(fd);
        free(l);
        return -1;
    }
    l->fd = fd;
    l->wake = wake;
    l->port = bound_port(fd);
    if (l->port < 0)
        l->port = port;
    *out = l;
    return 0;
}

int listener_port(const listener *l) {
    return l->port;
}

static void drain_wake(int fd) {
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v); /* non-blocking: resets the counter or finds it 0 */
    (void)n;
}

/* Errors accept() reports for one pending connection, not for the socket: accept(2) says to
 * treat TCP's pending network errors like EAGAIN, and EPERM is a firewall's refusal. */
static int client_error(int e) {
    switch (e) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return 1;
    default:
        return 0;
    }
}

/* Accepts up to ACCEPT_BATCH connections; returns 1 when out of descriptors or memory. */
static int accept_some(listener *l) {
    for (int k = 0; k < ACCEPT_BATCH && l->room(l->arg); k++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int c = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            l->complained = 0;
            l->hand(l->arg, c, (struct sockaddr *)&ss, len);
            continue;
        }
        if (client_error(errno))
            continue; /* that client's connection failed; others may be waiting */
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (!l->complained) /* once per episode: it may last */
            log_msg("accept: %s; new connections wait until it passes", strerror(errno));
        l->complained = 1;
        return 1;
    }
    return 0;
}

static void *accept_loop(void *arg) {
    listener *l = arg;
    int starved = 0;
    while (!atomic_load(&l->stopping)) {
        /* announce the wait before looking for room, so a close in between still wakes us */
        atomic_store(&l->waiting, 1);
        int take = !starved && l->room(l->arg);
        if (take)
            atomic_store(&l->waiting, 0);
        struct pollfd p[2] = {{.fd = l->wake, .events = POLLIN},
                              {.fd = take ? l->fd : -1, .events = POLLIN}};
        int n = poll(p, 2, starved ? RETRY_MS : -1);
        atomic_store(&l->waiting, 0);
        starved = 0;
        if (n < 0) {
            if (errno != EINTR && !l->complained) /* ENOMEM: wait, as for descriptors */
                log_msg("poll: %s; new connections wait until it passes", strerror(errno));
            l->complained |= errno != EINTR;
            starved = errno != EINTR;
            continue;
        }
        if (p[0].revents)
            drain_wake(l->wake);
        if ((p[1].revents & POLLIN) && !atomic_load(&l->stopping))
            starved = accept_some(l);
    }
    return NULL;
}

int listener_start(listener *l, listener_hand_fn hand, listener_room_fn room, void *arg, char *err,
                   size_t errlen) {
    l->hand = hand;
    l->room = room;
    l->arg = arg;
    int rc = pthread_create(&l->thread, NULL, accept_loop, l);
    if (rc) {
        snprintf(err, errlen, "cannot start the accepting thread: %s", strerror(rc));
        return -1;
    }
    l->started = 1;
    return 0;
}

static void poke(listener *l) {
    uint64_t one = 1;
    ssize_t n = write(l->wake, &one, sizeof one); /* EAGAIN: already pending, as good */
    (void)n;
}

void listener_wake(listener *l) {
    if (l && atomic_load(&l->waiting))
        poke(l);
}

void listener_close(listener *l) {
    if (!l)
        return;
    if (l->started) {
        atomic_store(&l->stopping, 1);
        poke(l);
        pthread_join(l->thread, NULL);
        l->started = 0;
    }
    if (l->fd >= 0) {
        close(l->fd); /* the backlog's connections are reset: nothing new is served */
        l->fd = -1;
    }
}

void listener_free(listener *l) {
    if (!l)
        return;
    listener_close(l);
    close(l->wake);
    free(l);
}
