/* The request deadline of trcd's HTTP layer: every connection must deliver a whole request
 * (headers and body) within `timeout` seconds of opening, or of its previous answer; one
 * thread checks the open connections a few times a second and shuts down the socket of a late
 * one (libmicrohttpd then sees end-of-file and closes it on its own thread). This bounds slow
 * clients (slowloris: a header byte every few seconds), which an idle timeout alone does not.
 * While a request is being handled or answered the connection has no deadline. */
#ifndef TRCD_DEADLINE_H
#define TRCD_DEADLINE_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct deadlines deadlines;
typedef struct deadline_conn deadline_conn;

int deadlines_create(double timeout_s, deadlines **out);
/* Stops the checking thread; the connections still listed are freed. */
void deadlines_free(deadlines *d);
/* A connection opened on socket fd (its deadline starts now); NULL when out of memory. */
deadline_conn *deadline_open(deadlines *d, int fd);
/* The connection is closing: forget it (before its socket is closed, so that the checking
 * thread never shuts down a reused descriptor). */
void deadline_close(deadlines *d, deadline_conn *c);
/* Its request is complete (handled from now on): no deadline until deadline_restart. */
void deadline_pause(deadlines *d, deadline_conn *c);
/* Its answer went out: the next request must arrive whole within the timeout from now. */
void deadline_restart(deadlines *d, deadline_conn *c);
/* A flag set (within a sweep, 100 ms) once the client of a paused connection has closed its
 * side or reset it: its request's work may stop. NULL for a NULL connection. */
const atomic_int *deadline_gone_flag(deadline_conn *c);
/* Connections shut down for being late, since the start. */
uint64_t deadline_expired_total(deadlines *d);

#endif
