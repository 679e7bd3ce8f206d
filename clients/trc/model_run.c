/* Checkpoint loading, system resolution and batched prediction for the commands that use a
 * trained model; see model_run.h. */
#include "model_run.h"

#include "trc/arch.h"
#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/fileio.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PREDICT_CHUNK 1024 /* samples per inference call */

/* The sidecar "<stem>.json" beside a checkpoint, as trcd reads it (docs/server.md):
 * {"system": ..., "dt": ..., "bound": ..., "K": ..., "n": ..., "m": ...}, every key optional.
 * Flags win over it; it wins over the checkpoint's metadata. */
typedef struct sidecar {
    char system[32];
    double dt, bound;
    int K, n, m;
    char *norm; /* "norm" as JSON text (malloc'd), or NULL; --norm wins */
} sidecar;

static int sidecar_num(const char *cmd, const char *side, json_t *o, const char *key, double lo,
                       double hi, double *v) {
    json_t *j = json_object_get(o, key);
    if (!j)
        return CLI_OK;
    if (!json_is_number(j) || !(json_number_value(j) >= lo && json_number_value(j) <= hi))
        return cli_error(CLI_USAGE, cmd, "%s: \"%s\" must be a number in [%g, %g]", side, key, lo,
                         hi);
    *v = json_number_value(j);
    return CLI_OK;
}

static int read_sidecar(const char *cmd, const char *ckpt, sidecar *sc) {
    memset(sc, 0, sizeof *sc);
    const char *ext = ".safetensors";
    size_t n = strlen(ckpt), e = strlen(ext);
    if (n < e || strcmp(ckpt + n - e, ext) != 0)
        return CLI_OK;
    char side[4096];
    if (n - e + 6 > sizeof side)
        return CLI_OK;
    snprintf(side, sizeof side, "%.*s.json", (int)(n - e), ckpt);
    FILE *f = fopen(side, "rb");
    if (!f)
        return CLI_OK;
    fclose(f);
    json_error_t je;
    json_t *o = json_load_file(side, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return cli_error(CLI_USAGE, cmd, "%s: not a JSON object (line %d: %s)", side, je.line,
                         je.text);
    }
    const char *key;
    json_t *v;
    int rc = CLI_OK;
    json_object_foreach(o, key, v) {
        char quoted[40];
        snprintf(quoted, sizeof quoted, ",%.32s,", key);
        if (!strstr(",system,dt,bound,K,n,m,norm,", quoted) || strlen(key) > 32) {
            rc = cli_error(CLI_USAGE, cmd,
                           "%s: unknown key '%s' (keys: system, dt, bound, K, n, m, norm)", side,
                           key);
            break;
        }
    }
    json_t *sys = json_object_get(o, "system");
    if (rc == CLI_OK && sys) {
        if (!json_is_string(sys) || strlen(json_string_value(sys)) >= sizeof sc->system)
            rc = cli_error(CLI_USAGE, cmd, "%s: \"system\" must be a system name", side);
        else
            snprintf(sc->system, sizeof sc->system, "%s", json_string_value(sys));
    }
    double K = 0, nn = 0, m = 0;
    if (rc == CLI_OK)
        rc = sidecar_num(cmd, side, o, "dt", 1e-9, 1e6, &sc->dt);
    if (rc == CLI_OK)
        rc = sidecar_num(cmd, side, o, "bound", 1e-9, 1e9, &sc->bound);
    if (rc == CLI_OK)
        rc = sidecar_num(cmd, side, o, "K", 1, 64, &K);
    if (rc == CLI_OK)
        rc = sidecar_num(cmd, side, o, "n", 1, 64, &nn);
    if (rc == CLI_OK)
        rc = sidecar_num(cmd, side, o, "m", 1, 64, &m);
    sc->K = (int)K;
    sc->n = (int)nn;
    sc->m = (int)m;
    json_t *norm = json_object_get(o, "norm");
    if (rc == CLI_OK && norm && !(sc->norm = json_dumps(norm, JSON_COMPACT)))
        rc = cli_error(CLI_FAIL, cmd, "out of memory");
    json_decref(o);
    return rc;
}

int cli_model_load(const char *cmd, const cli_model_flags *f, trc_model *out) {
    memset(out, 0, sizeof *out);
    if (!f->checkpoint)
        return cli_error(CLI_USAGE, cmd, "--checkpoint FILE is required");
    sidecar sc;
    int rc = read_sidecar(cmd, f->checkpoint, &sc);
    if (rc)
        return rc;
    trc_load_overrides ov = {.bound = (float)(f->bound > 0 ? f->bound : sc.bound),
                             .K = f->K ? f->K : sc.K,
                             .n = f->n ? f->n : sc.n,
                             .m = f->m ? f->m : sc.m};
    rc = trc_checkpoint_load(f->checkpoint, &ov, out);
    if (rc) {
        free(sc.norm);
        /* the loader's message names the file */
        return cli_lib_error(cmd, rc, rc == TRC_EINVAL);
    }
    if (sc.system[0])
        snprintf(out->cfg.system, sizeof out->cfg.system, "%s", sc.system);
    if (sc.dt > 0)
        out->cfg.dt = sc.dt;
    if (sc.norm && !f->norm && trc_model_norm_from_json(&out->cfg, sc.norm)) {
        free(sc.norm);
        trc_model_free(out);
        return cli_error(CLI_USAGE, cmd, "sidecar of %s: %s", f->checkpoint, trc_errmsg());
    }
    free(sc.norm);
    if (f->norm) { /* statistics the checkpoint does not carry (they win over its metadata) */
        uint8_t *buf;
        size_t len;
        char *text = NULL;
        if ((rc = trc_read_file(f->norm, &buf, &len)) == TRC_OK) {
            if ((text = malloc(len + 1))) {
                memcpy(text, buf, len);
                text[len] = 0;
            }
            free(buf);
            rc = text ? trc_model_norm_from_json(&out->cfg, text)
                      : trc_fail(TRC_ENOMEM, "out of memory");
            free(text);
        }
        if (rc) {
            trc_model_free(out);
            return cli_error(CLI_USAGE, cmd, "--norm %s: %s", f->norm, trc_errmsg());
        }
    }
    if (sc.system[0])
        snprintf(out->cfg.system, sizeof out->cfg.system, "%s", sc.system);
    if (sc.dt > 0)
        out->cfg.dt = sc.dt;
    return CLI_OK;
}

int cli_model_system(const char *cmd, const trc_model *model, const char *system, double dt,
                     const trc_system **sys_out, double *dt_out) {
    const trc_model_config *c = &model->cfg;
    /* the one rule (trc_system_resolve): --system, the checkpoint's metadata, else the one
     * system of the model's shape */
    const trc_system *sys;
    int rc = trc_system_resolve(system ? system : c->system, "the model", c->s, c->m, c->T, &sys);
    if (rc == TRC_ENOTFOUND)
        return cli_error(system ? CLI_USAGE : CLI_FAIL, cmd, "%s", trc_errmsg());
    if (rc)
        return cli_error(CLI_USAGE, cmd, "%s (use --system)", trc_errmsg());
    /* the checkpoint's dt belongs to its own system; a time step is never assumed */
    double d = dt > 0                                                         ? dt
               : (!system || !c->system[0] || strcmp(system, c->system) == 0) ? c->dt
                                                                              : 0;
    if (!(d > 0))
        return cli_error(CLI_USAGE, cmd,
                         "the model records no time step for %s: give it with --dt, or in a "
                         "sidecar <stem>.json beside the checkpoint: {\"dt\": ...} (the "
                         "original project used 5/15 in its first version and 0.33 later)",
                         sys->name);
    *sys_out = sys;
    *dt_out = d;
    return CLI_OK;
}

int cli_model_fits(const char *cmd, const trc_model *model, const trc_dataset *ds,
                   const char *data_path) {
    const trc_model_config *c = &model->cfg;
    if (ds->s != c->s || ds->m != c->m || ds->T != c->T)
        return cli_error(CLI_FAIL, cmd,
                         "%s: the data has s=%d, m=%d, T=%d but the model expects s=%d, m=%d, "
                         "T=%d",
                         data_path, ds->s, ds->m, ds->T, c->s, c->m, c->T);
    return CLI_OK;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --threads, or one per CPU (at most the plan's 64) */
static int run_threads(int threads) {
    long n = threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int cli_model_predict(const char *cmd, const trc_model *model, const trc_dataset *ds, int threads,
                      float *u_out, double *seconds) {
    return cli_model_predict_precision(cmd, model, ds, threads, TRC_PRECISION_FP32, u_out, seconds);
}

int cli_model_predict_precision(const char *cmd, const trc_model *model, const trc_dataset *ds,
                                int threads, trc_precision precision, float *u_out,
                                double *seconds) {
    const size_t S = (size_t)ds->s, U = (size_t)ds->T * (size_t)ds->m;
    double t0 = now_seconds();
    trc_infer_plan *plan = NULL;
    int rc = trc_infer_plan_create_precision(model, precision, &plan);
    for (size_t at = 0; rc == TRC_OK && at < ds->n; at += PREDICT_CHUNK) {
        size_t B = ds->n - at < PREDICT_CHUNK ? ds->n - at : PREDICT_CHUNK;
        rc = trc_infer_plan_run(plan, B, ds->initial_states + at * S, ds->target_states + at * S,
                                NULL, u_out + at * U, NULL, run_threads(threads));
    }
    trc_infer_plan_free(plan);
    if (rc)
        return cli_lib_error(cmd, rc, 0);
    if (seconds)
        *seconds = now_seconds() - t0;
    return CLI_OK;
}

int cli_model_flags_need_checkpoint(const char *cmd, cli_opt *opts, size_t nopts) {
    static const char *const model_flags[] = {"--bound", "-K", "-n", "-m", "--norm", "--threads"};
    const cli_opt *ck = cli_find(opts, nopts, "--checkpoint");
    for (size_t i = 0; !(ck && ck->seen) && i < sizeof model_flags / sizeof model_flags[0]; i++) {
        const cli_opt *o = cli_find(opts, nopts, model_flags[i]);
        if (o && o->seen)
            return cli_error(CLI_USAGE, cmd, "%s needs --checkpoint (it applies to the model)",
                             model_flags[i]);
    }
    return CLI_OK;
}

const char *cli_model_arch(const trc_model_config *c) {
    const trc_arch *a = trc_arch_of(c);
    return a ? a->name : c->arch[0] ? c->arch : TRC_ARCH_DEFAULT;
}

json_t *cli_model_json(const trc_model *model) {
    const trc_model_config *c = &model->cfg;
    return json_pack("{s:s, s:s, s:i, s:i, s:f, s:b, s:b, s:b}", "arch", cli_model_arch(c), "size",
                     c->size, "K", c->K, "n", c->n, "bound", (double)c->bound, "feedback",
                     c->feedback != 0, "normalised", c->norm != 0, "time_left", c->time_left != 0);
}

char *cli_model_row_json(const char *checkpoint, const trc_model *model, double seconds, size_t n) {
    json_t *j = json_pack("{s:s}", "checkpoint", checkpoint), *desc = cli_model_json(model);
    char *text = NULL;
    if (j && desc && json_object_update(j, desc) == 0 &&
        json_object_set_new(j, "parameters", json_integer((json_int_t)model->num_params)) == 0 &&
        json_object_set_new(j, "inference_ms_per_sample",
                            json_real(n ? 1e3 * seconds / (double)n : 0.0)) == 0)
        text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(desc);
    json_decref(j);
    return text;
}

int cli_model_controls(const char *cmd, const cli_model_flags *f, const trc_dataset *ds,
                       const char *data_path, float **u_out, char **row_json) {
    *u_out = NULL;
    *row_json = NULL;
    trc_model model;
    int rc = cli_model_load(cmd, f, &model);
    if (rc)
        return rc;
    rc = cli_model_fits(cmd, &model, ds, data_path);
    float *u = rc ? NULL : malloc(ds->n * (size_t)ds->T * (size_t)ds->m * sizeof *u);
    if (!rc && !u)
        rc = cli_error(CLI_FAIL, cmd, "out of memory");
    double seconds = 0;
    if (!rc)
        rc = cli_model_predict(cmd, &model, ds, f->threads, u, &seconds);
    if (!rc && !(*row_json = cli_model_row_json(f->checkpoint, &model, seconds, ds->n)))
        rc = cli_error(CLI_FAIL, cmd, "out of memory");
    trc_model_free(&model);
    if (rc) {
        free(u);
        return rc;
    }
    *u_out = u;
    return CLI_OK;
}

/* The closed loop's policy: the model's sequence from each current state (batched). */
typedef struct loop_model {
    const trc_infer_plan *plan;
    int threads;
    int s, U, T;
    float *time_left; /* [PREDICT_CHUNK] for a model that reads it (shrinking horizon), or NULL */
    size_t calls;
    double seconds;
} loop_model;

static int model_policy(void *user, size_t n, const float *x, const float *target, int steps_left,
                        float *u) {
    loop_model *lm = user;
    double t0 = now_seconds();
    for (size_t i = 0; lm->time_left && i < PREDICT_CHUNK; i++)
        lm->time_left[i] = (float)steps_left / (float)lm->T;
    for (size_t at = 0; at < n; at += PREDICT_CHUNK) {
        size_t B = n - at < PREDICT_CHUNK ? n - at : PREDICT_CHUNK;
        int rc =
            trc_infer_plan_run(lm->plan, B, x + at * (size_t)lm->s, target + at * (size_t)lm->s,
                               lm->time_left, u + at * (size_t)lm->U, NULL, lm->threads);
        if (rc)
            return rc;
    }
    lm->calls += n;
    lm->seconds += now_seconds() - t0;
    return TRC_OK;
}

int cli_model_closed_loop(const char *cmd, const cli_model_flags *f, const trc_dataset *ds,
                          const char *data_path, const trc_system *sys, double dt, double threshold,
                          double noise_sigma, uint64_t noise_seed, trc_eval_stats *out,
                          char **row_json) {
    *row_json = NULL;
    trc_model model;
    int rc = cli_model_load(cmd, f, &model);
    if (rc)
        return rc;
    if ((rc = cli_model_fits(cmd, &model, ds, data_path))) {
        trc_model_free(&model);
        return rc;
    }
    trc_infer_plan *plan;
    if ((rc = trc_infer_plan_create(&model, &plan))) {
        trc_model_free(&model);
        return cli_lib_error(cmd, rc, 0);
    }
    loop_model lm = {plan, run_threads(f->threads), ds->s, ds->T * ds->m, ds->T, NULL, 0, 0.0};
    if (model.cfg.time_left && !(lm.time_left = malloc(PREDICT_CHUNK * sizeof *lm.time_left)))
        rc = cli_error(CLI_FAIL, cmd, "out of memory");
    const trc_eval_loop loop = {model_policy, &lm, noise_sigma, noise_seed};
    if (!rc)
        rc = trc_eval_closed_loop(sys, dt, ds->T, ds->n, ds->initial_states, ds->target_states,
                                  &loop, threshold, out, NULL, NULL);
    free(lm.time_left);
    trc_infer_plan_free(plan);
    if (rc) {
        trc_model_free(&model);
        return cli_lib_error(cmd, rc, 0);
    }
    /* shrinking: each call plans the steps left (a model trained with tails); receding: a
     * whole horizon again */
    json_t *j = json_pack(
        "{s:s, s:b, s:s, s:f, s:I, s:I, s:f, s:f}", "checkpoint", f->checkpoint, "closed_loop", 1,
        "horizon", model.cfg.time_left ? "shrinking" : "receding", "process_noise", noise_sigma,
        "noise_seed", (json_int_t)noise_seed, "model_calls", (json_int_t)lm.calls,
        "model_calls_per_s", lm.seconds > 0 ? (double)lm.calls / lm.seconds : 0.0,
        "inference_ms_per_call", lm.calls ? 1e3 * lm.seconds / (double)lm.calls : 0.0);
    trc_model_free(&model);
    if (j) {
        *row_json = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
        json_decref(j);
    }
    if (!*row_json)
        return cli_error(CLI_FAIL, cmd, "out of memory");
    printf("closed loop: %zu model calls (%d steps x %zu samples) at %.0f calls/s, %.4f ms per "
           "call%s\n",
           lm.calls, ds->T, ds->n, lm.seconds > 0 ? (double)lm.calls / lm.seconds : 0.0,
           lm.calls ? 1e3 * lm.seconds / (double)lm.calls : 0.0,
           noise_sigma > 0 ? "" : ", no process noise");
    return CLI_OK;
}
