/* The version of libtrc and its programs (trc, trcd), one place for all of them. */
#ifndef TRC_VERSION_H
#define TRC_VERSION_H

#define TRC_VERSION "0.1.0"

#endif
