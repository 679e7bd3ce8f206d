/* trcd's listening socket and the one thread that accepts on it. Each accepted connection is
 * handed to a callback (server/http.c gives it to libmicrohttpd with MHD_add_connection), so
 * libmicrohttpd never holds the listening socket and closing it at shutdown is ours alone:
 * libmicrohttpd 0.9.75's own way (MHD_quiesce_daemon) races its event threads over the
 * socket's epoll registration and aborts the process ("Failed to remove listen FD from epoll
 * set", daemon.c:5531) when a thread is awake at that moment.
 *
 * While the server is full (the room callback says so) the socket is not polled: new
 * connections wait in the kernel's backlog, as they do under libmicrohttpd's own limit, until
 * listener_wake says a connection closed. */
#ifndef TRCD_LISTENER_H
#define TRCD_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct listener listener;

/* Takes ownership of fd (non-blocking, close-on-exec); returns 0 when it was taken, else the
 * callback has closed it. */
typedef int (*listener_hand_fn)(void *arg, int fd, const struct sockaddr *addr, socklen_t len);
/* Nonzero while another connection may be accepted. */
typedef int (*listener_room_fn)(void *arg);

/* Resolves host (numeric or a name) and binds, listening with the given backlog (port 0 picks
 * a free port). On failure returns -1 with a one-line reason in err. */
int listener_open(const char *host, int port, int backlog, listener **out, char *err,
                  size_t errlen);
int listener_port(const listener *l);
/* Starts the accepting thread. Returns 0, or -1 (err set) when the thread cannot start. */
int listener_start(listener *l, listener_hand_fn hand, listener_room_fn room, void *arg, char *err,
                   size_t errlen);
/* A connection closed: room may be free again (cheap; any thread). */
void listener_wake(listener *l);
/* Stops accepting and closes the socket: connections not yet accepted are refused. Every
 * connection accepted before has been handed over when this returns. Idempotent. */
void listener_close(listener *l);
/* Closes (if still open) and frees. NULL is fine. */
void listener_free(listener *l);

#endif
