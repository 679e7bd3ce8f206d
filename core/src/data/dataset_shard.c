/* Datasets made on several machines: shard I of N solves a fixed slice of the single run's
 * candidate stream (trc_gen_options.first skips to it) and keeps every candidate; the merge
 * checks the shards belong to one run, keeps the converged ones in draw order and solves the
 * replacements a single run would have drawn after its last candidate. The result is the
 * single run's dataset, byte for byte once saved (bar an iterative expert's solve times). */
#include "trc/dataset.h"
#include "trc/error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHARDS 100000

void trc_shard_range(size_t n, int index, int count, size_t *first, size_t *size) {
    /* n <= 1e8 and count <= 1e5, so the products fit in 64 bits */
    size_t a = (size_t)((unsigned long long)n * (unsigned)index / (unsigned)count);
    size_t b = (size_t)((unsigned long long)n * ((unsigned)index + 1) / (unsigned)count);
    *first = a;
    *size = b - a;
}

int trc_dataset_generate_shard(const trc_gen_settings *g, size_t n, int index, int count,
                               const trc_gen_options *opt, trc_dataset *out,
                               trc_gen_summary *summary) {
    memset(out, 0, sizeof *out);
    if (count < 1 || count > MAX_SHARDS)
        return trc_fail(TRC_EINVAL, "shard count must be in 1..%d, got %d", MAX_SHARDS, count);
    if (index < 0 || index >= count)
        return trc_fail(TRC_EINVAL, "shard index must be in 0..%d for %d shards, got %d", count - 1,
                        count, index);
    if ((size_t)count > n)
        return trc_fail(TRC_EINVAL, "%d shards of %zu samples: every shard needs one sample", count,
                        n);
    trc_gen_options o = opt ? *opt : (trc_gen_options){.threads = 1};
    const int keep = o.keep_unconverged;
    size_t size;
    trc_shard_range(n, index, count, &o.first, &size);
    o.keep_unconverged = 1; /* the merge decides, knowing every shard */
    int rc = trc_dataset_generate_with(g, size, &o, out, summary);
    if (rc)
        return rc;
    out->shard = (trc_shard_info){index, count, n, o.first, keep};
    return TRC_OK;
}

static const char *name_of(const char *const *names, size_t i) {
    return names && names[i] ? names[i] : "a shard";
}

/* The settings two shards of one run share (field by field: the struct has padding). */
static int same_settings(const trc_gen_settings *a, const trc_gen_settings *b) {
    int same_target = (isnan(a->target_lo) && isnan(b->target_lo)) ||
                      (a->target_lo == b->target_lo && a->target_hi == b->target_hi);
    if (strcmp(a->system, b->system) || strcmp(a->expert, b->expert) || a->T != b->T ||
        a->dt != b->dt || a->bound != b->bound || a->seed != b->seed || a->box_lo != b->box_lo ||
        a->box_hi != b->box_hi || !same_target)
        return 0;
    for (int k = 0; k < TRC_EXPERT_MAX_PARAMS; k++)
        if (a->expert_params[k] != b->expert_params[k])
            return 0;
    return 1;
}

/* Checks that shards[0..count) are the shards of one run, each once; order[i] = the position
 * of shard index i. */
static int check_shards(const trc_dataset *sh, size_t count, const char *const *names,
                        size_t *order) {
    const trc_dataset *a = &sh[0];
    for (size_t i = 0; i < count; i++) {
        const trc_dataset *d = &sh[i];
        if (!d->has_settings || d->shard.count < 1)
            return trc_fail(TRC_EINVAL, "%s: not a shard (made without trc generate --shard)",
                            name_of(names, i));
        if (!same_settings(&d->settings, &a->settings) || d->s != a->s || d->m != a->m)
            return trc_fail(TRC_EINVAL,
                            "%s: made with other settings than %s (system, expert, seed, horizon, "
                            "dt, bound, box or expert parameters differ): shards of different "
                            "runs",
                            name_of(names, i), name_of(names, 0));
        if (d->shard.count != a->shard.count || d->shard.total != a->shard.total ||
            d->shard.keep_unconverged != a->shard.keep_unconverged)
            return trc_fail(TRC_EINVAL,
                            "%s: shard %d/%d of %zu samples, but %s is shard %d/%d of %zu "
                            "samples%s: shards of different runs",
                            name_of(names, i), d->shard.index, d->shard.count, d->shard.total,
                            name_of(names, 0), a->shard.index, a->shard.count, a->shard.total,
                            d->shard.keep_unconverged != a->shard.keep_unconverged
                                ? " (and --keep-unconverged differs)"
                                : "");
        size_t first, size;
        int idx = d->shard.index;
        if (idx < 0 || idx >= d->shard.count)
            return trc_fail(TRC_EINVAL, "%s: shard index %d out of range", name_of(names, i), idx);
        trc_shard_range(d->shard.total, idx, d->shard.count, &first, &size);
        if (d->shard.first != first || d->n != size)
            return trc_fail(TRC_EINVAL,
                            "%s: shard %d/%d should hold samples %zu..%zu of %zu, but holds %zu "
                            "from %zu",
                            name_of(names, i), idx, d->shard.count, first, first + size,
                            d->shard.total, d->n, d->shard.first);
    }
    const size_t N = (size_t)a->shard.count;
    for (size_t k = 0; k < N; k++)
        order[k] = SIZE_MAX;
    for (size_t i = 0; i < count; i++) {
        size_t idx = (size_t)sh[i].shard.index;
        if (order[idx] != SIZE_MAX)
            return trc_fail(TRC_EINVAL, "shard %zu/%zu given twice: %s and %s", idx, N,
                            name_of(names, order[idx]), name_of(names, i));
        order[idx] = i;
    }
    char missing[160] = "";
    size_t nmiss = 0, len = 0;
    for (size_t k = 0; k < N; k++)
        if (order[k] == SIZE_MAX) {
            if (nmiss++ < 8 && len < sizeof missing)
                len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%zu",
                                        nmiss > 1 ? ", " : "", k);
        }
    if (nmiss)
        return trc_fail(TRC_EINVAL, "%zu of %zu shards missing (index %s%s)", nmiss, N, missing,
                        nmiss > 8 ? ", ..." : "");
    return TRC_OK;
}

/* Copies sample i of src to slot j of dst (both with the same arrays). */
static void copy_sample(trc_dataset *dst, size_t j, const trc_dataset *src, size_t i) {
    const size_t s = (size_t)src->s, U = (size_t)src->T * src->m, X = ((size_t)src->T + 1) * s;
    memcpy(dst->initial_states + j * s, src->initial_states + i * s, sizeof(float) * s);
    memcpy(dst->target_states + j * s, src->target_states + i * s, sizeof(float) * s);
    memcpy(dst->control_sequences + j * U, src->control_sequences + i * U, sizeof(float) * U);
    memcpy(dst->state_trajectories + j * X, src->state_trajectories + i * X, sizeof(float) * X);
    dst->costs[j] = src->costs[i];
    if (dst->solve_stats) {
        memcpy(dst->solve_stats + 2 * j, src->solve_stats + 2 * i, sizeof(float) * 2);
        dst->solve_ms[j] = src->solve_ms[i];
    }
}

int trc_dataset_merge(const trc_dataset *sh, size_t count, const char *const *names,
                      const trc_gen_options *opt, trc_dataset *out, trc_gen_summary *summary) {
    memset(out, 0, sizeof *out);
    if (count == 0)
        return trc_fail(TRC_EINVAL, "no shard to merge");
    if (count > MAX_SHARDS)
        return trc_fail(TRC_EINVAL, "at most %d shards, got %zu", MAX_SHARDS, count);
    for (size_t i = 0; i < count; i++) /* the arrays a generated shard always has */
        if (!sh[i].state_trajectories || !sh[i].costs ||
            (sh[i].solve_stats != NULL) != (sh[0].solve_stats != NULL) ||
            (sh[i].solve_stats && !sh[i].solve_ms))
            return trc_fail(TRC_EINVAL, "%s: not a shard (arrays missing)", name_of(names, i));
    size_t *order = malloc(sizeof *order * (size_t)(sh[0].shard.count > 0 ? sh[0].shard.count : 1));
    if (!order)
        return trc_fail(TRC_ENOMEM, "merge: cannot allocate");
    int rc = check_shards(sh, count, names, order);
    if (rc) {
        free(order);
        return rc;
    }
    const trc_shard_info *info = &sh[0].shard;
    const size_t total = info->total;
    const int keep = info->keep_unconverged;
    trc_gen_summary sum = {0};
    if ((rc = trc_dataset_alloc(out, total, sh[0].s, sh[0].m, sh[0].T)) == TRC_OK &&
        sh[0].solve_stats) {
        out->solve_stats = calloc(total * 2, sizeof(float));
        out->solve_ms = calloc(total, sizeof(float));
        if (!out->solve_stats || !out->solve_ms)
            rc = trc_fail(TRC_ENOMEM, "merge: cannot allocate");
    }
    size_t kept = 0;
    for (size_t k = 0; rc == TRC_OK && k < (size_t)info->count; k++) {
        const trc_dataset *d = &sh[order[k]];
        for (size_t i = 0; i < d->n; i++) {
            int conv = !d->solve_stats || d->solve_stats[2 * i + 1] != 0;
            sum.drawn++;
            sum.unconverged += !conv;
            if (conv || keep)
                copy_sample(out, kept++, d, i);
        }
    }
    free(order);
    if (rc == TRC_OK && kept < total) { /* the single run's replacements: the next candidates */
        trc_gen_options o = opt ? *opt : (trc_gen_options){.threads = 1};
        o.first = total;
        o.keep_unconverged = 0;
        trc_dataset tail;
        trc_gen_summary ts;
        if ((rc = trc_dataset_generate_with(&sh[0].settings, total - kept, &o, &tail, &ts)) ==
            TRC_OK) {
            for (size_t i = 0; i < tail.n; i++)
                copy_sample(out, kept++, &tail, i);
            sum.drawn += ts.drawn;
            sum.unconverged += ts.unconverged;
            trc_dataset_free(&tail);
        }
    }
    if (rc) {
        trc_dataset_free(out);
        return rc;
    }
    out->has_settings = 1;
    out->settings = sh[0].settings;
    out->dt = sh[0].dt; /* what the shards record */
    snprintf(out->system, sizeof out->system, "%s", sh[0].system);
    snprintf(out->cost_label, sizeof out->cost_label, "%s", sh[0].cost_label);
    if (summary) {
        double it = 0, ms = 0;
        for (size_t i = 0; out->solve_stats && i < total; i++) {
            it += out->solve_stats[2 * i];
            ms += out->solve_ms[i];
        }
        sum.iters_mean = it / (double)total;
        sum.solve_ms_mean = ms / (double)total;
        *summary = sum;
    }
    return TRC_OK;
}
