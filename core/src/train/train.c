/* The training loop: a seeded train/validation split, shuffled mini-batches, the objective's
 * loss (trc/objective.h: imitation MSE on the expert controls by default), AdamW with gradient
 * clipping, a per-epoch schedule, early stopping, best and last checkpoints, and a saved optimizer
 * state so that a cancelled or killed run resumes where it stopped. Files: train_state.c (the
 * state), train_report.c (stats and curves). */
#include "trc/train.h"
#include "trc/checkpoint.h"
#include "trc/arch.h"
#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/settings.h"
#include "trc/system.h"
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VAL_CHUNK 1024 /* validation samples per inference call */

static int check_dataset(const trc_dataset *ds) {
    if (!ds)
        return trc_fail(TRC_EINVAL, "dataset is NULL");
    if (ds->s < 1 || ds->m < 1 || ds->T < 1)
        return trc_fail(TRC_EINVAL, "dataset: dimensions must be positive (s=%d m=%d T=%d)", ds->s,
                        ds->m, ds->T);
    if (ds->n < 1 || ds->n > UINT32_MAX)
        return trc_fail(TRC_EINVAL, "dataset: sample count must be in 1..%u, got %zu", UINT32_MAX,
                        ds->n);
    if (!ds->initial_states || !ds->target_states || !ds->control_sequences)
        return trc_fail(TRC_EINVAL, "dataset: missing initial, target or control arrays");
    const size_t S = (size_t)ds->s, U = (size_t)ds->T * (size_t)ds->m;
    for (size_t i = 0; i < ds->n; i++) {
        int ok = 1;
        for (size_t k = 0; k < S; k++)
            ok &= isfinite(ds->initial_states[i * S + k]) && isfinite(ds->target_states[i * S + k]);
        for (size_t k = 0; k < U; k++)
            ok &= isfinite(ds->control_sequences[i * U + k]);
        if (!ok)
            return trc_fail(TRC_EINVAL, "dataset: sample %zu has a non-finite value", i);
    }
    return TRC_OK;
}

uint64_t trc_train_data_hash(const trc_dataset *ds) {
    uint64_t h = 0xcbf29ce484222325ULL;
    const uint64_t dims[4] = {ds->n, (uint64_t)ds->s, (uint64_t)ds->m, (uint64_t)ds->T};
    const struct {
        const void *p;
        size_t len;
    } parts[4] = {
        {dims, sizeof dims},
        {ds->initial_states, ds->n * (size_t)ds->s * sizeof(float)},
        {ds->target_states, ds->n * (size_t)ds->s * sizeof(float)},
        {ds->control_sequences, ds->n * (size_t)ds->T * (size_t)ds->m * sizeof(float)},
    };
    for (int k = 0; k < 4; k++) {
        const unsigned char *b = parts[k].p;
        for (size_t i = 0; i < parts[k].len; i++) {
            h ^= b[i];
            h *= 0x100000001b3ULL;
        }
    }
    return h;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int join_path(char *dst, size_t cap, const char *dir, const char *name) {
    int w = snprintf(dst, cap, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= cap)
        return trc_fail(TRC_EINVAL, "path too long: %s/%s", dir, name);
    return TRC_OK;
}

/* The loop's working memory beside the run's saved state. */
typedef struct work {
    uint32_t *train_idx, *order; /* [n_train]: the split and this epoch's shuffle of it */
    float *bx, *bt, *bu;         /* batch buffers [B, s], [B, s], [B, U] */
    float *btl, *vtl;            /* time left [B], [n_val]; NULL when the data has no tails */
    float *vx, *vt, *vu, *vout;  /* validation set, gathered once, and predictions */
    float *vit, *viters, *vgrad; /* a chunk's iterates; every iterate [(K+1), n_val, U]; grad */
    double *vterms;              /* [n_val, TRC_OBJECTIVE_MAX_TERMS] */
    const trc_system *system;    /* the data's (NULL when it names none) */
    double dt;
    float *best_params; /* [num_params] */
    trc_trainer *tr;
    char best_path[4096], last_path[4096], state_path[4096], stats_path[4096], svg_path[4096];
} work;

/* Rows idx of the data -> x0 [B, s], tg [B, s], u [B, U] and (when the data has tails) the
 * fraction of the horizon left tl [B]. */
static void gather(const trc_dataset *ds, const uint32_t *idx, size_t B, float *x0, float *tg,
                   float *u, float *tl) {
    const size_t S = (size_t)ds->s, U = (size_t)ds->T * (size_t)ds->m;
    for (size_t b = 0; b < B; b++) {
        memcpy(x0 + b * S, ds->initial_states + idx[b] * S, S * sizeof(float));
        memcpy(tg + b * S, ds->target_states + idx[b] * S, S * sizeof(float));
        memcpy(u + b * U, ds->control_sequences + idx[b] * U, U * sizeof(float));
        if (tl)
            tl[b] = ds->steps_left[idx[b]] / (float)ds->T;
    }
}

/* The objective's loss over the n_val validation samples (iterates inferred in chunks, without
 * activations, then scored in one pass: for imitation the MSE summed in row order) and its
 * terms. */
static int validation_loss(const trc_run *run, work *w, double *out, double *terms) {
    const trc_model_config *c = &run->model.cfg;
    const size_t S = (size_t)run->ds->s, U = (size_t)run->ds->T * (size_t)run->ds->m;
    const size_t n = run->n_val, K1 = (size_t)c->K + 1;
    for (size_t at = 0; at < n; at += VAL_CHUNK) {
        size_t B = n - at < VAL_CHUNK ? n - at : VAL_CHUNK;
        int rc = trc_model_infer_mt(&run->model, B, w->vx + at * S, w->vt + at * S,
                                    w->vtl ? w->vtl + at : NULL, w->vout, w->vit, 1);
        if (rc)
            return trc_fail_prefix(rc, "validation: ");
        /* the iterates back in the network's units: the loss is computed in them */
        trc_model_norm_controls(c, K1 * B * (size_t)c->T, w->vit, w->vit);
        for (size_t k = 0; k < K1; k++)
            memcpy(w->viters + (k * n + at) * U, w->vit + k * B * U, B * U * sizeof(float));
    }
    const trc_objective_units units = {c->x_std, c->u_mean, c->u_std, c->bound};
    trc_objective_batch b = {.B = n,
                             .K = c->K,
                             .U = (int)U,
                             .s = c->s,
                             .m = c->m,
                             .T = c->T,
                             .bound = trc_model_net_bound(c),
                             .x0 = w->vx,
                             .target = w->vt,
                             .u_expert = w->vu,
                             .x0_sim = w->vx, /* physical: the model normalises its inputs */
                             .target_sim = w->vt,
                             .units = c->norm ? &units : NULL,
                             .time_left = w->vtl,
                             .system = w->system,
                             .dt = w->dt,
                             .params = &run->o.obj,
                             .terms = w->vterms};
    const trc_objective *obj = run->objective;
    *out = obj->finish(&b, obj->rows(&b, w->viters, 0, n, w->vgrad));
    for (int k = 0; k < run->nterms; k++) {
        terms[k] = 0.0;
        for (size_t r = 0; r < n; r++)
            terms[k] += w->vterms[r * TRC_OBJECTIVE_MAX_TERMS + k];
    }
    return TRC_OK;
}

static int save_checkpoint(const trc_run *run, const char *path, int epoch) {
    char *summary = trc_train_summary(run, epoch);
    if (!summary)
        return trc_fail(TRC_ENOMEM, "cannot build the training summary");
    int rc = trc_checkpoint_save_names(path, &run->model,
                                       run->o.names[0] ? run->o.names : TRC_NAMES_NEW, summary);
    free(summary);
    return rc;
}

static int save_best(const trc_run *run, const work *w) {
    /* The best parameters may be older than the model's: save through a view of them. */
    trc_model best = run->model;
    best.params = w->best_params;
    trc_run tmp = *run;
    tmp.model = best;
    return save_checkpoint(&tmp, w->best_path, run->best_epoch);
}

/* Last checkpoint, optimizer state, stats and curves: everything a resume or a reader needs. */
static int save_progress(const trc_run *run, const work *w) {
    int rc = save_checkpoint(run, w->last_path, run->epoch_done);
    if (!rc)
        rc = trc_train_state_save(run, w->state_path);
    if (!rc)
        rc = trc_train_write_stats(run, w->stats_path);
    if (!rc)
        rc = trc_train_write_curves_terms(run->history, run->epoch_done, run->best_epoch,
                                          run->nterms ? run->objective->terms : NULL, w->svg_path);
    return rc;
}

/* Whether the run normalises: "on", "off", or "auto" = on when the data's system draws each
 * component from its own box (its components live on different scales, rocket_landing). */
static int wants_norm(const trc_run *run) {
    const char *mode = run->o.normalize[0] ? run->o.normalize : "auto";
    if (strcmp(mode, "auto") != 0)
        return strcmp(mode, "on") == 0;
    const trc_dataset *ds = run->ds;
    const trc_system *sys = ds->has_settings ? trc_system_find(ds->settings.system) : NULL;
    return sys && sys->box_lo_k && sys->s == ds->s && sys->m == ds->m;
}

/* Per-component mean/std of the initial states and of every control of the training split. */
static int norm_stats(const trc_run *run, const uint32_t *idx, trc_model_config *cfg) {
    const trc_dataset *ds = run->ds;
    const size_t n = run->n_train, S = (size_t)ds->s, U = (size_t)ds->T * (size_t)ds->m;
    float *x = malloc(n * S * sizeof *x), *u = malloc(n * U * sizeof *u);
    int rc = TRC_OK;
    if (!x || !u)
        rc = trc_fail(TRC_ENOMEM, "cannot allocate the normalisation statistics");
    for (size_t i = 0; !rc && i < n; i++) {
        memcpy(x + i * S, ds->initial_states + idx[i] * S, S * sizeof *x);
        memcpy(u + i * U, ds->control_sequences + idx[i] * U, U * sizeof *u);
    }
    if (!rc)
        rc = trc_model_norm_from_data(cfg, n, x, n * (size_t)ds->T, u);
    free(x);
    free(u);
    return rc;
}

/* The normalisation statistics of the checkpoint at path into cfg, when it has them. */
static int init_norm(const char *path, trc_model_config *cfg, int *inherited) {
    trc_model src;
    int rc = trc_checkpoint_load(path, NULL, &src);
    if (rc)
        return trc_fail_prefix(TRC_EINVAL, "init: ");
    const trc_model_config *c = &src.cfg;
    *inherited = c->norm && c->s == cfg->s && c->m == cfg->m;
    if (*inherited) {
        cfg->norm = 1;
        memcpy(cfg->x_mean, c->x_mean, sizeof cfg->x_mean);
        memcpy(cfg->x_std, c->x_std, sizeof cfg->x_std);
        memcpy(cfg->u_mean, c->u_mean, sizeof cfg->u_mean);
        memcpy(cfg->u_std, c->u_std, sizeof cfg->u_std);
    }
    trc_model_free(&src);
    return TRC_OK;
}

static int make_model(const trc_run *run, const uint32_t *train_idx, trc_model *model) {
    const trc_dataset *ds = run->ds;
    double bound = run->o.bound > 0 ? run->o.bound : ds->has_settings ? ds->settings.bound : 4.0;
    trc_model_config cfg;
    int rc = trc_model_config_preset_arch(run->o.arch, run->o.model_size, ds->s, ds->m, ds->T,
                                          (float)bound, &cfg);
    if (rc)
        return rc;
    cfg.K = run->o.K;
    cfg.n = run->o.n;
    cfg.feedback = run->o.feedback;
    /* what the data records (settings or sidecar); no dt recorded: none in the checkpoint
     * either (its users must then say it, never a system's default) */
    snprintf(cfg.system, sizeof cfg.system, "%s", ds->system);
    cfg.dt = ds->dt;
    cfg.time_left = ds->steps_left != NULL;
    /* a fine-tune keeps the statistics its parameters were trained with (the data may differ:
     * e.g. trc dagger's rows); otherwise the training split's */
    int inherited = 0;
    if (run->o.init[0] && wants_norm(run) && (rc = init_norm(run->o.init, &cfg, &inherited)))
        return rc;
    if (!inherited && wants_norm(run) && (rc = norm_stats(run, train_idx, &cfg)))
        return rc;
    return trc_model_create(&cfg, model);
}

/* Settings a resumed run must share with the saved one: every saved option but the resumable
 * ones (the budget may grow). */
static int check_same_settings(const trc_train_opts *a, const trc_train_opts *saved) {
    const trc_option_set *set = trc_train_option_set();
    for (size_t i = 0; i < set->count; i++) {
        const trc_option *opt = &set->options[i];
        if (!(opt->where & TRC_OPT_SAVED) || (opt->where & TRC_OPT_RESUMABLE))
            continue;
        if (trc_option_is_default(opt, a) && trc_option_is_default(opt, saved))
            continue; /* e.g. arch "" and "single" */
        char mine[64], theirs[64];
        trc_option_format(opt, a, mine, sizeof mine);
        trc_option_format(opt, saved, theirs, sizeof theirs);
        if (strcmp(mine, theirs) != 0)
            return trc_fail(TRC_EINVAL, "resume: setting '%s' is %s but the saved run used %s",
                            opt->name, mine, theirs);
    }
    return TRC_OK;
}

/* The parameters of the checkpoint at path, which must be a model of the same architecture,
 * size and shape. */
static int init_from(trc_model *model, const char *path) {
    trc_model src;
    int rc = trc_checkpoint_load(path, NULL, &src);
    if (rc)
        return trc_fail_prefix(TRC_EINVAL, "init: ");
    const trc_model_config *a = &model->cfg, *b = &src.cfg;
    const char *aa = a->arch[0] ? a->arch : TRC_ARCH_DEFAULT,
               *ba = b->arch[0] ? b->arch : TRC_ARCH_DEFAULT;
    if (strcmp(aa, ba) != 0 || a->d != b->d || a->h != b->h || a->blocks != b->blocks ||
        a->s != b->s || a->m != b->m || a->T != b->T || src.num_params != model->num_params)
        rc = trc_fail(TRC_EINVAL,
                      "init: %s is a %s model (d=%d, s=%d, m=%d, T=%d), the run trains a %s "
                      "model (d=%d, s=%d, m=%d, T=%d)",
                      path, ba, b->d, b->s, b->m, b->T, aa, a->d, a->s, a->m, a->T);
    else if (a->norm != b->norm ||
             (a->norm && (memcmp(a->x_mean, b->x_mean, (size_t)a->s * sizeof(float)) ||
                          memcmp(a->x_std, b->x_std, (size_t)a->s * sizeof(float)) ||
                          memcmp(a->u_mean, b->u_mean, (size_t)a->m * sizeof(float)) ||
                          memcmp(a->u_std, b->u_std, (size_t)a->m * sizeof(float)))))
        /* its parameters only mean something with the statistics they were trained with */
        rc = trc_fail(TRC_EINVAL,
                      "init: %s has other normalisation statistics than the run (%s vs %s; "
                      "--normalize, the data and the split must match)",
                      path, b->norm ? "normalised" : "none", a->norm ? "normalised" : "none");
    else
        memcpy(model->params, src.params, model->num_params * sizeof(float));
    trc_model_free(&src);
    return rc;
}

static int setup(trc_run *run, work *w) {
    const trc_dataset *ds = run->ds;
    const trc_train_opts *o = &run->o;
    const size_t n = ds->n, S = (size_t)ds->s, U = (size_t)ds->T * (size_t)ds->m;

    /* Split: a seeded shuffle of all indices; the first n_train train, the rest validate. */
    size_t n_val = 0;
    if (o->val_split > 0) {
        n_val = (size_t)floor((double)n * o->val_split);
        if (n_val == 0)
            n_val = 1;
    }
    if (n_val >= n)
        return trc_fail(TRC_EINVAL,
                        "dataset of %zu samples leaves nothing to train on with val_split %g", n,
                        o->val_split);
    run->n_val = n_val;
    run->n_train = n - n_val;
    run->data_hash = trc_train_data_hash(ds);

    uint32_t *all = malloc(n * sizeof *all);
    w->order = malloc(run->n_train * sizeof *w->order);
    size_t B = (size_t)o->batch_size < run->n_train ? (size_t)o->batch_size : run->n_train;
    w->bx = malloc(B * S * sizeof(float));
    w->bt = malloc(B * S * sizeof(float));
    w->bu = malloc(B * U * sizeof(float));
    if (ds->steps_left) {
        w->btl = malloc(B * sizeof(float));
        w->vtl = malloc((n_val ? n_val : 1) * sizeof(float));
    }
    run->history = calloc((size_t)o->epochs, sizeof *run->history);
    if (!all || !w->order || !w->bx || !w->bt || !w->bu || !run->history ||
        (ds->steps_left && (!w->btl || !w->vtl))) {
        free(all);
        return trc_fail(TRC_ENOMEM, "cannot allocate training buffers");
    }
    for (size_t i = 0; i < n; i++)
        all[i] = (uint32_t)i;
    trc_rng split;
    trc_rng_seed(&split, o->seed);
    trc_rng_shuffle(&split, all, (uint32_t)n);
    w->train_idx = all; /* the first n_train entries; the rest is the validation set */
    if (n_val) {
        w->vx = malloc(n_val * S * sizeof(float));
        w->vt = malloc(n_val * S * sizeof(float));
        w->vu = malloc(n_val * U * sizeof(float));
        size_t chunk = n_val < VAL_CHUNK ? n_val : VAL_CHUNK, K1 = (size_t)o->K + 1;
        w->vout = malloc(chunk * U * sizeof(float));
        w->vit = malloc(K1 * chunk * U * sizeof(float));
        w->viters = malloc(K1 * n_val * U * sizeof(float));
        w->vgrad = malloc(K1 * n_val * U * sizeof(float));
        w->vterms = calloc(n_val * TRC_OBJECTIVE_MAX_TERMS, sizeof(double));
        if (!w->vx || !w->vt || !w->vu || !w->vout || !w->vit || !w->viters || !w->vgrad ||
            !w->vterms)
            return trc_fail(TRC_ENOMEM, "cannot allocate the validation set");
        gather(ds, all + run->n_train, n_val, w->vx, w->vt, w->vu, w->vtl);
    }

    int rc = make_model(run, all, &run->model);
    /* the validation loss in the network's units, as the training loss */
    if (!rc && n_val)
        trc_model_norm_controls(&run->model.cfg, n_val * (size_t)ds->T, w->vu, w->vu);
    if (!rc)
        rc = trc_model_init(&run->model, o->seed);
    if (!rc && o->init[0])
        rc = init_from(&run->model, o->init);
    if (!rc)
        rc = trc_trainer_create(&run->model, B, &w->tr);
    if (!rc)
        rc = trc_trainer_set_threads(w->tr, o->threads);
    if (!rc)
        rc = trc_trainer_set_objective(w->tr, run->objective, w->system, w->dt);
    if (!rc)
        rc = trc_trainer_set_objective_params(w->tr, &o->obj);
    if (!rc)
        rc = trc_adamw_init(&run->opt, run->model.num_params, o->weight_decay);
    /* parameters without a gradient are not decayed either (as torch skips `grad is None`) */
    const trc_arch *arch = rc ? NULL : trc_arch_of(&run->model.cfg);
    for (size_t i = 0; !rc && arch && arch->grad_absent && i < run->model.num_views; i++)
        if (arch->grad_absent(&run->model.cfg, run->model.views[i].name))
            rc = trc_adamw_freeze(&run->opt, run->model.views[i].offset, run->model.views[i].numel);
    if (!rc)
        rc = trc_sched_init(&run->sched, o->scheduler, o->lr, o->lr_min, o->epochs, o->step_size,
                            trc_train_effective_gamma(o), o->plateau_patience);
    if (rc)
        return rc;
    w->best_params = malloc(run->model.num_params * sizeof(float));
    if (!w->best_params)
        return trc_fail(TRC_ENOMEM, "cannot allocate the best parameters");
    memcpy(w->best_params, run->model.params, run->model.num_params * sizeof(float));
    /* Its own stream, distinct from the split's, for the per-epoch shuffles. */
    trc_rng_seed(&run->epoch_rng, o->seed ^ 0x9e3779b97f4a7c15ULL);
    run->best_loss = INFINITY;

    if (o->out_dir[0]) {
        if ((rc = trc_mkdir_p(o->out_dir)) != 0 ||
            (rc = join_path(w->best_path, sizeof w->best_path, o->out_dir, TRC_BEST_FILE)) ||
            (rc = join_path(w->last_path, sizeof w->last_path, o->out_dir, TRC_LAST_FILE)) ||
            (rc = join_path(w->state_path, sizeof w->state_path, o->out_dir, TRC_STATE_FILE)) ||
            (rc = join_path(w->stats_path, sizeof w->stats_path, o->out_dir, TRC_STATS_FILE)) ||
            (rc = join_path(w->svg_path, sizeof w->svg_path, o->out_dir, TRC_CURVES_FILE)))
            return rc;
    }
    return TRC_OK;
}

static int restore(trc_run *run, work *w) {
    trc_train_opts saved;
    int rc = trc_train_state_settings(w->state_path, &saved);
    if (rc)
        return rc;
    if ((rc = check_same_settings(&run->o, &saved)) != 0)
        return rc;
    if ((rc = trc_train_state_load(run, w->state_path)) != 0)
        return rc;
    if (run->best_epoch > 0) {
        trc_model best;
        rc = trc_checkpoint_load(w->best_path, NULL, &best);
        if (rc)
            return trc_fail_prefix(rc, "resume: ");
        if (best.num_params != run->model.num_params) {
            trc_model_free(&best);
            return trc_fail(TRC_EFORMAT, "resume: %s does not match the run's model", w->best_path);
        }
        memcpy(w->best_params, best.params, best.num_params * sizeof(float));
        trc_model_free(&best);
    } else {
        memcpy(w->best_params, run->model.params, run->model.num_params * sizeof(float));
    }
    return TRC_OK;
}

static void free_work(work *w) {
    free(w->train_idx);
    free(w->order);
    free(w->bx);
    free(w->bt);
    free(w->bu);
    free(w->btl);
    free(w->vtl);
    free(w->vx);
    free(w->vt);
    free(w->vu);
    free(w->vout);
    free(w->vit);
    free(w->viters);
    free(w->vgrad);
    free(w->vterms);
    free(w->best_params);
    trc_trainer_free(w->tr);
}

static int is_cancelled(const atomic_int *cancel) {
    return cancel && atomic_load(cancel) != 0;
}

/* Session figures for progress and ETA (this process only: a resumed run starts afresh). */
typedef struct clock_info {
    double start;
    size_t samples; /* trained this session */
} clock_info;

static double eta_seconds(const trc_run *run, const clock_info *c) {
    double elapsed = now_seconds() - c->start;
    if (c->samples == 0 || elapsed <= 0)
        return -1.0;
    double left = (double)(run->o.epochs - run->epoch_done) * (double)run->n_train -
                  (double)run->epoch_samples;
    return left > 0 ? left * elapsed / (double)c->samples : 0.0;
}

/* One epoch from run->batch_done on. Returns TRC_ECANCELED when stopped between batches. */
static int train_epoch(trc_run *run, work *w, trc_progress_fn progress, void *user,
                       const atomic_int *cancel, clock_info *clk) {
    const size_t B = (size_t)run->o.batch_size;
    const size_t batches = (run->n_train + B - 1) / B;
    const size_t P = run->model.num_params;
    float *grads = trc_trainer_grads(w->tr);

    /* The order is a shuffle of the split from the epoch's saved generator state, so a run
     * resumed mid-epoch sees the same order. */
    trc_rng rng = run->epoch_rng;
    memcpy(w->order, w->train_idx, run->n_train * sizeof *w->order);
    trc_rng_shuffle(&rng, w->order, (uint32_t)run->n_train);

    for (size_t b = run->batch_done; b < batches; b++) {
        if (is_cancelled(cancel))
            return trc_fail(TRC_ECANCELED, "training cancelled at epoch %d, batch %zu",
                            run->epoch_done + 1, b);
        double t0 = now_seconds();
        size_t at = b * B, nb = run->n_train - at < B ? run->n_train - at : B;
        gather(run->ds, w->order + at, nb, w->bx, w->bt, w->bu, w->btl);
        float loss;
        int rc = trc_trainer_forward(w->tr, nb, w->bx, w->bt, w->btl, w->bu, NULL, &loss);
        if (!rc && !isfinite(loss))
            rc = trc_fail(TRC_ENUMERIC, "loss is not finite at epoch %d, batch %zu",
                          run->epoch_done + 1, b + 1);
        if (!rc)
            rc = trc_trainer_backward(w->tr);
        if (!rc)
            rc = trc_clip_grad_norm(grads, P, run->o.grad_clip, NULL);
        if (!rc)
            rc = trc_adamw_step(&run->opt, run->model.params, grads, run->sched.lr);
        if (rc)
            return rc;
        run->epoch_loss_sum += (double)loss * (double)nb;
        double terms[TRC_OBJECTIVE_MAX_TERMS];
        int nt = trc_trainer_terms(w->tr, terms);
        for (int k = 0; k < nt; k++)
            run->epoch_term_sum[k] += terms[k] * (double)nb;
        run->epoch_samples += nb;
        run->batch_done = b + 1;
        run->epoch_train_seconds += now_seconds() - t0;
        clk->samples += nb;
        if (progress) {
            trc_progress p = {
                .kind = TRC_PROGRESS_BATCH,
                .epoch = run->epoch_done + 1,
                .epochs = run->o.epochs,
                .batch = b + 1,
                .batches = batches,
                .batch_loss = loss,
                .samples_per_sec = run->epoch_train_seconds > 0
                                       ? (double)run->epoch_samples / run->epoch_train_seconds
                                       : 0.0,
                .eta_seconds = eta_seconds(run, clk),
                .history = run->history,
                .best_epoch = run->best_epoch,
            };
            if (progress(user, &p))
                return trc_fail(TRC_ECANCELED,
                                "training stopped by the progress callback at "
                                "epoch %d, batch %zu",
                                run->epoch_done + 1, b + 1);
        }
    }
    run->epoch_rng = rng; /* the next epoch shuffles from here */
    return TRC_OK;
}

/* Closes an epoch: validation, schedule, best model, history, files. *improved set. */
static int end_epoch(trc_run *run, work *w, double epoch_start, int *improved) {
    double train_loss = run->epoch_loss_sum / (double)run->epoch_samples;
    double val_loss = NAN, val_terms[TRC_OBJECTIVE_MAX_TERMS];
    for (int k = 0; k < TRC_OBJECTIVE_MAX_TERMS; k++)
        val_terms[k] = NAN;
    if (run->n_val) {
        int rc = validation_loss(run, w, &val_loss, val_terms);
        if (rc)
            return rc;
        if (!isfinite(val_loss))
            return trc_fail(TRC_ENUMERIC, "validation loss is not finite at epoch %d",
                            run->epoch_done + 1);
    }
    double monitor = run->n_val ? val_loss : train_loss;
    trc_epoch_stats *st = &run->history[run->epoch_done];
    st->epoch = run->epoch_done + 1;
    st->train_loss = train_loss;
    st->val_loss = val_loss;
    st->lr = run->sched.lr; /* the rate this epoch trained with */
    st->samples_per_sec =
        run->epoch_train_seconds > 0 ? (double)run->epoch_samples / run->epoch_train_seconds : 0.0;
    st->nterms = run->nterms;
    for (int k = 0; k < run->nterms; k++) {
        st->train_terms[k] = run->epoch_term_sum[k] / (double)run->epoch_samples;
        st->val_terms[k] = val_terms[k];
        run->epoch_term_sum[k] = 0.0;
    }
    trc_sched_step(&run->sched, monitor);

    run->epoch_done++;
    run->batch_done = 0;
    run->epoch_loss_sum = 0.0;
    run->epoch_samples = 0;
    run->epoch_train_seconds = 0.0;
    *improved = monitor < run->best_loss;
    if (*improved) {
        run->best_loss = monitor;
        run->best_epoch = run->epoch_done;
        run->bad_epochs = 0;
        memcpy(w->best_params, run->model.params, run->model.num_params * sizeof(float));
    } else {
        run->bad_epochs++;
    }
    st->seconds = now_seconds() - epoch_start;
    if (run->o.out_dir[0]) {
        int rc = *improved ? save_best(run, w) : TRC_OK;
        if (!rc)
            rc = save_progress(run, w);
        if (rc)
            return rc;
    }
    st->seconds = now_seconds() - epoch_start; /* including the files */
    return TRC_OK;
}

static int finish_result(trc_run *run, const work *w, trc_train_result *res) {
    res->epochs_run = run->epoch_done;
    res->best_epoch = run->best_epoch;
    res->best_loss = run->best_epoch ? run->best_loss : NAN;
    res->stopped_early = run->stopped_early;
    res->cancelled = run->cancelled;
    if (run->o.out_dir[0]) {
        if (run->best_epoch)
            snprintf(res->best_path, sizeof res->best_path, "%s", w->best_path);
        snprintf(res->last_path, sizeof res->last_path, "%s", w->last_path);
    }
    int rc = trc_model_create(&run->model.cfg, &res->model);
    if (rc)
        return rc;
    memcpy(res->model.params, w->best_params, run->model.num_params * sizeof(float));
    return TRC_OK;
}

int trc_train(const trc_dataset *ds, const trc_train_opts *opts, trc_progress_fn progress,
              void *user, const atomic_int *cancel, trc_train_result *result) {
    if (!result)
        return trc_fail(TRC_EINVAL, "training result is NULL");
    memset(result, 0, sizeof *result);
    int rc = trc_train_opts_validate(opts);
    if (!rc)
        rc = check_dataset(ds);
    if (rc)
        return rc;
    /* The objective and the system it may simulate, checked before anything is written. */
    const trc_objective *objective = trc_train_objective(opts);
    const trc_system *system = NULL;
    if (ds->system[0] && !(system = trc_system_find(ds->system)) && /* settings or sidecar */
        objective->needs_jacobian)
        return trc_fail_prefix(TRC_EINVAL, "dataset: ");
    if ((rc = trc_objective_check(objective, system)) != 0)
        return rc;
    if (objective->needs_jacobian && !(ds->dt > 0)) /* never a system's default dt */
        return trc_fail(TRC_EINVAL,
                        "objective '%s' simulates the data, which records no time step: give it "
                        "in a sidecar <stem>.json beside the .npz ({\"dt\": ...})",
                        objective->name);

    /* Tails (opts->tails): the run trains on the data and tails of its solutions, drawn from
     * their own stream of the seed so a resumed run draws the same. */
    trc_dataset tails;
    memset(&tails, 0, sizeof tails);
    if (opts->tails > 0 &&
        (rc = trc_dataset_add_tails(ds, opts->tails, opts->seed ^ 0x7a11ULL, &tails)) != 0)
        return trc_fail_prefix(rc, "--tails: ");

    trc_run run;
    memset(&run, 0, sizeof run);
    run.o = *opts;
    run.ds = opts->tails > 0 ? &tails : ds;
    run.objective = objective;
    run.nterms = trc_objective_nterms(objective);
    work w;
    memset(&w, 0, sizeof w);
    w.system = system;
    w.dt = ds->dt; /* what the data records (0: none, refused above where it matters) */
    rc = setup(&run, &w);
    if (!rc && opts->resume)
        rc = restore(&run, &w);

    clock_info clk = {now_seconds(), 0};
    while (!rc && run.epoch_done < run.o.epochs) {
        if (run.o.patience > 0 && run.bad_epochs >= run.o.patience) {
            run.stopped_early = 1;
            break;
        }
        double epoch_start = now_seconds() - run.epoch_train_seconds;
        rc = train_epoch(&run, &w, progress, user, cancel, &clk);
        if (rc)
            break;
        int improved = 0;
        rc = end_epoch(&run, &w, epoch_start, &improved);
        if (rc)
            break;
        if (progress) {
            const trc_epoch_stats *st = &run.history[run.epoch_done - 1];
            trc_progress p = {
                .kind = TRC_PROGRESS_EPOCH,
                .epoch = run.epoch_done,
                .epochs = run.o.epochs,
                .batch = (run.n_train + (size_t)run.o.batch_size - 1) / (size_t)run.o.batch_size,
                .batches = (run.n_train + (size_t)run.o.batch_size - 1) / (size_t)run.o.batch_size,
                .batch_loss = st->train_loss,
                .samples_per_sec = st->samples_per_sec,
                .eta_seconds = eta_seconds(&run, &clk),
                .history = run.history,
                .best_epoch = run.best_epoch,
                .improved = improved,
                .term_names = run.nterms ? objective->terms : NULL,
            };
            if (progress(user, &p))
                rc = trc_fail(TRC_ECANCELED,
                              "training stopped by the progress callback after "
                              "epoch %d",
                              run.epoch_done);
        }
    }
    if (!rc && run.o.patience > 0 && run.bad_epochs >= run.o.patience)
        run.stopped_early = 1;

    if (rc == TRC_ECANCELED) {
        /* Keep what a resume needs; the message of the cancel stays the error. */
        run.cancelled = 1;
        if (run.o.out_dir[0] && w.tr) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", trc_errmsg());
            int src = save_progress(&run, &w);
            if (src) {
                free_work(&w);
                trc_adamw_free(&run.opt);
                trc_model_free(&run.model);
                free(run.history);
                trc_dataset_free(&tails);
                return trc_fail_prefix(src, "saving the cancelled run: ");
            }
            trc_fail(TRC_ECANCELED, "%s", msg);
        }
    } else if (!rc && run.o.out_dir[0]) {
        /* Final stats (early stop flag, total time) even when no epoch ran in this session. */
        rc = trc_train_write_stats(&run, w.stats_path);
    }
    if (!rc || rc == TRC_ECANCELED) {
        int frc = finish_result(&run, &w, result);
        if (frc)
            rc = frc;
    }
    free_work(&w);
    trc_adamw_free(&run.opt);
    trc_model_free(&run.model);
    free(run.history);
    trc_dataset_free(&tails);
    return rc;
}
