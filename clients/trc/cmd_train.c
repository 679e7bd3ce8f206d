/* `trc train`: trains a model on a dataset with the library's training loop, showing a progress
 * bar on a terminal and writing one JSON line per epoch when stdout is not a terminal (or with
 * --json). Ctrl-C (or SIGTERM) stops at the next batch with the run saved; `trc train --resume
 * DIR` continues it with the settings it was started with. */
#include "cli.h"
#include "commands.h"

#include "trc/arch.h"
#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/settings.h"
#include "trc/train.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *CMD = "train";

static atomic_int g_interrupted;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_interrupted, 1);
}

typedef struct view {
    int bar;     /* progress bar on stderr */
    FILE *human; /* per-epoch text lines (stderr with the bar, stdout on a terminal, or NULL) */
    int json;    /* one JSON line per epoch on stdout */
    double last_draw;
    const char *out_dir;
} view;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_eta(double s, char *buf, size_t cap) {
    if (!(s >= 0) || !isfinite(s)) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, cap, "%lds", t);
}

static void draw_bar(view *v, const trc_progress *p) {
    double t = now_seconds();
    if (t - v->last_draw < 0.1 && p->batch != p->batches)
        return;
    v->last_draw = t;
    enum { WIDTH = 24 };
    int fill = p->batches ? (int)(WIDTH * p->batch / p->batches) : 0;
    char bar[WIDTH + 1], eta[32];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '=' : ' ';
    bar[WIDTH] = 0;
    fmt_eta(p->eta_seconds, eta, sizeof eta);
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %zu/%zu  loss %.4e  %.0f samples/s  ETA %s", p->epoch,
            p->epochs, bar, p->batch, p->batches, p->batch_loss, p->samples_per_sec, eta);
    fflush(stderr);
}

static void epoch_line(view *v, const trc_progress *p) {
    const trc_epoch_stats *e = &p->history[p->epoch - 1];
    if (v->human) {
        if (v->bar)
            fprintf(stderr, "\r\033[K");
        fprintf(v->human, "epoch %d/%d  train %.4e", p->epoch, p->epochs, e->train_loss);
        if (isfinite(e->val_loss))
            fprintf(v->human, "  val %.4e", e->val_loss);
        for (int k = 0; k < e->nterms && p->term_names; k++)
            fprintf(v->human, "  %s %.3e", p->term_names[k], e->train_terms[k]);
        fprintf(v->human, "  lr %.3g  %.1f s  %.0f samples/s%s\n", e->lr, e->seconds,
                e->samples_per_sec, p->improved ? "  *best" : "");
        fflush(v->human);
    }
    if (v->json) {
        json_t *j = json_pack("{s:i, s:i, s:f, s:o, s:f, s:f, s:f, s:i, s:b}", "epoch", p->epoch,
                              "epochs", p->epochs, "train_loss", e->train_loss, "val_loss",
                              isfinite(e->val_loss) ? json_real(e->val_loss) : json_null(), "lr",
                              e->lr, "seconds", e->seconds, "samples_per_sec", e->samples_per_sec,
                              "best_epoch", p->best_epoch, "improved", p->improved);
        if (j && e->nterms > 0 && p->term_names) { /* each term of the objective's loss */
            json_t *tt = json_object(), *vt = json_object();
            for (int k = 0; k < e->nterms; k++) {
                json_object_set_new(tt, p->term_names[k], json_real(e->train_terms[k]));
                json_object_set_new(vt, p->term_names[k],
                                    isfinite(e->val_terms[k]) ? json_real(e->val_terms[k])
                                                              : json_null());
            }
            json_object_set_new(j, "train_terms", tt);
            json_object_set_new(j, "val_terms", vt);
        }
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
        json_decref(j);
        if (text)
            printf("%s\n", text);
        free(text);
        fflush(stdout);
    }
}

static int on_progress(void *user, const trc_progress *p) {
    view *v = user;
    if (p->kind == TRC_PROGRESS_BATCH) {
        if (v->bar)
            draw_bar(v, p);
    } else {
        epoch_line(v, p);
    }
    return 0;
}

static void summary(const view *v, const trc_train_result *r) {
    if (v->json) {
        json_t *j = json_pack("{s:b, s:i, s:i, s:o, s:b, s:s, s:s, s:s}", "done", 1, "epochs_run",
                              r->epochs_run, "best_epoch", r->best_epoch, "best_loss",
                              isfinite(r->best_loss) ? json_real(r->best_loss) : json_null(),
                              "stopped_early", r->stopped_early, "out", v->out_dir, "best_model",
                              r->best_path, "last_model", r->last_path);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
        json_decref(j);
        if (text)
            printf("%s\n", text);
        free(text);
    }
    if (v->human) {
        fprintf(v->human,
                "%s after %d epochs; best epoch %d (loss %.4e)\n  best: %s\n  last: "
                "%s\n  stats: %s/training_stats.json, curves: "
                "%s/training_curves.svg\n",
                r->stopped_early ? "stopped early" : "done", r->epochs_run, r->best_epoch,
                r->best_loss, r->best_path, r->last_path, v->out_dir, v->out_dir);
    }
}

int cmd_train(int argc, char **argv) {
    trc_train_opts o;
    trc_train_opts_default(&o);
    const char *data = NULL, *out = NULL, *resume = NULL;
    int json = 0, threads = 0;
    cli_opt opts[48] = {
        CLI_OPT("--data", CLI_STR, &data, "FILE", "training dataset .npz (required)"),
        CLI_OPT("--out", CLI_STR, &out, "DIR",
                "where checkpoints, training_stats.json and training_curves.svg go (required)"),
    };
    /* Every training setting is a flag, from the option table (trc/settings.h). */
    const trc_option_set *set = trc_train_option_set();
    size_t nopts =
        cli_add_options(opts, 2, sizeof opts / sizeof opts[0] - 3, set->options, set->count, &o);
    opts[nopts++] = (cli_opt)CLI_OPT("--resume", CLI_STR, &resume, "DIR",
                                     "continue the run saved in DIR with its settings (only "
                                     "--epochs, --data, --threads, --json apply)");
    opts[nopts++] = (cli_opt)CLI_OPT(
        "--json", CLI_BOOL, &json, "",
        "one JSON line per epoch on stdout (the default when stdout is not a terminal)");
    opts[nopts++] = (cli_opt)CLI_RANGE("--threads", CLI_INT, &threads, "N",
                                       "threads of each training step (default: the CPUs, at "
                                       "most 8); results depend on it",
                                       1, 64, 0);
    int rc = cli_parse(CMD, argc, argv, opts, nopts);
    if (rc == CLI_HELP) {
        cli_print_help(
            stdout, CMD,
            "--data FILE --out DIR [options]  |  --resume DIR [--epochs N] [--data FILE]",
            "Trains a TRC model on a dataset's expert controls (MSE, AdamW, gradient "
            "clipping, a learning-rate\nschedule, early stopping). Writes "
            "best_model.safetensors, last_model.safetensors,\n"
            "optimizer_state.safetensors, training_stats.json and training_curves.svg "
            "into DIR.\nThe same seed and thread count give the same checkpoints bit "
            "for bit. Ctrl-C saves the run;\n`trc train --resume DIR` continues it "
            "exactly where it stopped.",
            opts, nopts);
        return CLI_OK;
    }
    if (rc)
        return rc;

    if (resume) {
        /* A run keeps its settings: only the resumable ones (the budget) may be given. */
        if (cli_find(opts, nopts, "--out")->seen)
            return cli_error(CLI_USAGE, CMD,
                             "--out cannot change when resuming: the run keeps its settings "
                             "(only --epochs, --data, --threads and --json apply)");
        for (size_t i = 0; i < nopts; i++)
            if (opts[i].kind == CLI_OPTION && opts[i].seen &&
                !(opts[i].desc->where & TRC_OPT_RESUMABLE))
                return cli_error(CLI_USAGE, CMD,
                                 "%s cannot change when resuming: the run keeps its settings "
                                 "(only --epochs, --data, --threads and --json apply)",
                                 opts[i].name);
        trc_train_opts given = o;
        if ((rc = trc_train_saved_settings(resume, &o)) != 0)
            return cli_lib_error(CMD, rc, 0);
        for (size_t i = 0; i < nopts; i++)
            if (opts[i].kind == CLI_OPTION && opts[i].seen)
                trc_option_copy(opts[i].desc, &o, &given);
        if (!data && !o.data_path[0])
            return cli_error(CLI_USAGE, CMD,
                             "the run in %s recorded no data path: give --data FILE", resume);
        if (!data)
            data = o.data_path;
        out = resume;
    } else {
        if (!data)
            return cli_error(CLI_USAGE, CMD, "--data FILE is required");
        if (!out)
            return cli_error(CLI_USAGE, CMD, "--out DIR is required");
        /* the architecture's own cycle counts unless -K / -n say otherwise */
        trc_model_config pc;
        if (cli_find(opts, nopts, "--arch")->seen &&
            trc_model_config_preset_arch(o.arch, o.model_size, 2, 1, 15, 4.0f, &pc) == TRC_OK) {
            if (!cli_find(opts, nopts, "-K")->seen)
                o.K = pc.K;
            if (!cli_find(opts, nopts, "-n")->seen)
                o.n = pc.n;
        }
        if (strlen(out) >= sizeof o.out_dir)
            return cli_error(CLI_USAGE, CMD, "--out: path too long");
        snprintf(o.out_dir, sizeof o.out_dir, "%s", out);
    }
    /* Record where the data is so that --resume finds it from any directory. */
    char abs[PATH_MAX];
    const char *recorded = realpath(data, abs) ? abs : data;
    if (strlen(recorded) < sizeof o.data_path)
        snprintf(o.data_path, sizeof o.data_path, "%s", recorded);
    if (threads > 0) {
        o.threads = threads;
    } else {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    }
    if ((rc = trc_train_opts_validate(&o)) != 0)
        return cli_lib_error(CMD, rc, 1);

    trc_dataset ds;
    if ((rc = trc_dataset_load(data, &ds)) != 0)
        return cli_lib_error(CMD, rc, 0);

    view v = {.out_dir = out};
    v.bar = isatty(STDERR_FILENO);
    v.json = json || !isatty(STDOUT_FILENO);
    v.human = v.bar ? stderr : (!v.json ? stdout : NULL);

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    trc_train_result res;
    rc = trc_train(&ds, &o, on_progress, &v, &g_interrupted, &res);

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (v.bar)
        fprintf(stderr, "\r\033[K");
    trc_dataset_free(&ds);
    if (rc == TRC_ECANCELED) {
        trc_model_free(&res.model);
        return cli_error(CLI_FAIL, CMD,
                         "interrupted after %d epochs; the run is saved: continue with `trc "
                         "train --resume %s`",
                         res.epochs_run, out);
    }
    if (rc) {
        /* Settings the library refused are the user's (exit 2); anything else failed (1). */
        return cli_lib_error(CMD, rc, rc == TRC_EINVAL || rc == TRC_EUNSUPPORTED);
    }
    summary(&v, &res);
    trc_model_free(&res.model);
    return CLI_OK;
}
