/* libFuzzer harness for the .npz reader: the archive (trc_npz_open_mem, every entry read and
 * CRC-checked) and the dataset loader on top of it (trc_dataset_load, through a memfd so no
 * file is written). Run through `make fuzz` (tests/fuzz/README.md).
 *
 * Every failure must be an error code, never a crash, a leak or an unbounded allocation; a
 * dataset that loads must have the shapes it claims (n >= 1, s, m, T >= 1) and finite-size
 * arrays that can be walked end to end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rc(int rc) {
    if (rc != TRC_OK && rc != TRC_EFORMAT && rc != TRC_EUNSUPPORTED && rc != TRC_ENOMEM &&
        rc != TRC_ENOTFOUND && rc != TRC_EINVAL)
        abort();
}

static void read_archive(const uint8_t *data, size_t size) {
    trc_npz *z;
    int rc = trc_npz_open_mem(data, size, "fuzz.npz", &z);
    check_rc(rc);
    if (rc)
        return;
    for (size_t i = 0; i < trc_npz_count(z); i++) {
        const char *key = trc_npz_key(z, i);
        if (!key || !trc_npz_has(z, key))
            abort();
        trc_npy_array a;
        rc = trc_npz_read(z, key, &a);
        check_rc(rc);
        if (rc == TRC_ENOTFOUND)
            abort();
        trc_npy_free(&a);
    }
    trc_npz_close(z);
}

static float sum(const float *x, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

static void load_dataset(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz.npz", MFD_CLOEXEC);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    trc_dataset ds;
    int rc = trc_dataset_load(path, &ds);
    close(fd);
    check_rc(rc == TRC_EIO ? TRC_EFORMAT : rc);
    if (rc)
        return;
    if (ds.n < 1 || ds.s < 1 || ds.m < 1 || ds.T < 1 || !ds.initial_states || !ds.target_states ||
        !ds.control_sequences)
        abort();
    /* Touch every element: ASan catches an array shorter than its shape. */
    volatile float s = sum(ds.initial_states, ds.n * (size_t)ds.s) +
                       sum(ds.target_states, ds.n * (size_t)ds.s) +
                       sum(ds.control_sequences, ds.n * (size_t)ds.T * (size_t)ds.m);
    if (ds.state_trajectories)
        s += sum(ds.state_trajectories, ds.n * (size_t)(ds.T + 1) * (size_t)ds.s);
    if (ds.costs)
        s += sum(ds.costs, ds.n);
    (void)s;
    trc_dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    read_archive(data, size);
    load_dataset(data, size);
    return 0;
}
