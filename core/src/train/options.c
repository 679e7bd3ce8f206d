/* The training options: one table line per setting of trc_train_opts (trc/settings.h), and
 * the defaults, validation and JSON form (the settings saved with a run, in
 * training_stats.json, checkpoint summaries and the optimizer state) built on it. One home for
 * them, so the loop (train.c) and the saved state (train_state.c) both call here and never each
 * other. The order of the SAVED lines is the order of the settings JSON in checkpoints and
 * optimizer states: append, never reorder. */
#include "trc/arch.h"
#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/settings.h"
#include "train_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The scheduler's names are the optimizer's (trc_sched_name). */
static const char *sched_at(size_t i) {
    return i <= TRC_SCHED_NONE ? trc_sched_name((trc_sched_kind)i) : NULL;
}

/* The architectures' names, from their table (trc/arch.h). */
static const char *const normalize_choices[] = {"auto", "on", "off", NULL};

static const char *arch_at(size_t i) {
    return i < trc_arch_count() ? trc_arch_at(i)->name : NULL;
}

/* Every size name of any architecture, each once, in table order (whether the chosen
 * architecture has it is checked with the other rules). */
static const char *size_at(size_t i) {
    for (size_t a = 0; a < trc_arch_count(); a++) {
        const trc_arch *arch = trc_arch_at(a);
        for (size_t k = 0; k < arch->nsizes; k++) {
            int seen = 0;
            for (size_t b = 0; b < a && !seen; b++)
                seen = trc_arch_size_find(trc_arch_at(b), arch->sizes[k].name) != NULL;
            if (!seen && i-- == 0)
                return arch->sizes[k].name;
        }
    }
    return NULL;
}

static const char *const process_variants[] = {"corrected", "original", NULL};
/* The checkpoint key spellings (trc/checkpoint.h), the newer first. */
static const char *names_at(size_t i) {
    static const char *const spellings[] = {TRC_NAMES_NEW, TRC_NAMES_OLD};
    return i < 2 ? spellings[i] : NULL;
}

_Static_assert(sizeof(trc_sched_kind) == sizeof(int), "scheduler is stored as an int choice");

#define F(field) .offset = offsetof(trc_train_opts, field)
#define SAVED (TRC_OPT_ALL)

static const trc_option train_options[] = {
    {.name = "model_size",
     .type = TRC_OPT_STRING,
     F(model_size),
     .size = sizeof(((trc_train_opts *)0)->model_size),
     .def_str = "medium",
     .choice_at = size_at,
     .help = "network size (of the architecture)",
     .metavar = "SIZE",
     .where = SAVED},
    {.name = "K",
     .type = TRC_OPT_INT,
     F(K),
     .def = 3,
     .min = 1,
     .max = 64,
     .help = "outer refinement cycles (two_level/trm_style: H cycles; trc train --arch: the "
             "architecture's unless given)",
     .metavar = "K",
     .where = SAVED},
    {.name = "n",
     .type = TRC_OPT_INT,
     F(n),
     .def = 3,
     .min = 1,
     .max = 64,
     .help = "inner reasoning cycles (two_level/trm_style: L cycles; trc train --arch: the "
             "architecture's unless given)",
     .metavar = "N",
     .where = SAVED},
    {.name = "epochs",
     .type = TRC_OPT_INT,
     F(epochs),
     .def = 100,
     .min = 1,
     .max = 1000000,
     .job_max = 10000,
     .help = "epoch budget",
     .unit = "epochs",
     .where = SAVED | TRC_OPT_RESUMABLE},
    {.name = "batch_size",
     .type = TRC_OPT_INT,
     F(batch_size),
     .def = 64,
     .min = 1,
     .max = 1 << 20,
     .job_max = 4096,
     .help = "samples per optimizer step",
     .unit = "samples",
     .where = SAVED},
    {.name = "lr",
     .type = TRC_OPT_DOUBLE,
     F(lr),
     .def = 1e-3,
     .min = 0,
     .max = 10,
     .min_open = 1,
     .help = "learning rate (AdamW)",
     .where = SAVED},
    {.name = "weight_decay",
     .type = TRC_OPT_DOUBLE,
     F(weight_decay),
     .def = 1e-5,
     .min = 0,
     .max = 1,
     .help = "AdamW decoupled weight decay (lr * weight_decay < 1)",
     .where = SAVED},
    {.name = "grad_clip",
     .type = TRC_OPT_DOUBLE,
     F(grad_clip),
     .def = 1.0,
     .min = 0,
     .max = 1e6,
     .help = "global gradient-norm clip (0 = off)",
     .where = SAVED},
    {.name = "scheduler",
     .type = TRC_OPT_ENUM,
     F(scheduler),
     .def_str = "cosine",
     .choice_at = sched_at,
     .help = "learning-rate schedule (cosine decays to lr_min over the budget)",
     .metavar = "NAME",
     .where = SAVED},
    {.name = "lr_min",
     .type = TRC_OPT_DOUBLE,
     F(lr_min),
     .def = 1e-6,
     .min = 0,
     .max = 10,
     .help = "cosine: final learning rate (at most lr)",
     .where = SAVED},
    {.name = "step_size",
     .type = TRC_OPT_INT,
     F(step_size),
     .def = 30,
     .min = 1,
     .max = 1000000,
     .help = "step: epochs per decay",
     .unit = "epochs",
     .where = SAVED},
    {.name = "gamma",
     .type = TRC_OPT_DOUBLE,
     F(gamma),
     .def = 0,
     .min = 0,
     .max = 1,
     .min_open = 1,
     .auto_text = "0.1 for step, 0.5 for plateau",
     .help = "step/plateau decay factor (plateau: below 1)",
     .where = SAVED},
    {.name = "plateau_patience",
     .type = TRC_OPT_INT,
     F(plateau_patience),
     .def = 10,
     .min = 0,
     .max = 1000000,
     .help = "plateau: epochs without improvement before a decay",
     .unit = "epochs",
     .where = SAVED},
    {.name = "patience",
     .type = TRC_OPT_INT,
     F(patience),
     .def = 20,
     .min = 0,
     .max = 1000000,
     .job_max = 10000,
     .help = "early stopping after this many epochs without improvement (0 = off)",
     .unit = "epochs",
     .where = SAVED},
    {.name = "val_split",
     .type = TRC_OPT_DOUBLE,
     F(val_split),
     .def = 0.1,
     .min = 0,
     .max = 1,
     .max_open = 1,
     .job_max = 0.5,
     .help = "validation fraction (0 = keep the best by training loss)",
     .where = SAVED},
    {.name = "seed",
     .type = TRC_OPT_U64,
     F(seed),
     .def = 42,
     .help = "split, shuffling and initialization (a job's data too)",
     .metavar = "S",
     .where = SAVED},
    {.name = "bound",
     .type = TRC_OPT_DOUBLE,
     F(bound),
     .def = 0,
     .min = 0,
     .max = 1e6,
     .min_open = 1,
     .auto_text = "the dataset's, else 4",
     .help = "control bound of the network",
     .metavar = "B",
     .where = SAVED},
    /* Appended last and saved only when not the default: the settings of every run from
     * before architectures had names read the same. */
    {.name = "arch",
     .type = TRC_OPT_STRING,
     F(arch),
     .size = sizeof(((trc_train_opts *)0)->arch),
     .def_str = TRC_ARCH_DEFAULT,
     .choice_at = arch_at,
     .help = "network architecture",
     .metavar = "NAME",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    /* The loss and its weights (trc/objective.h), saved only when not the default. */
    {.name = "objective",
     .type = TRC_OPT_STRING,
     F(objective),
     .size = sizeof(((trc_train_opts *)0)->objective),
     .def_str = "imitation",
     .choice_at = trc_objective_name_at,
     .help = "training loss: imitation (MSE on the expert's controls; alias mse), trajectory "
             "(the simulated rollout's error and cost, gradient through the simulator), mixed "
             "(both), process (process supervision)",
     .metavar = "NAME",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "terminal_weight",
     .type = TRC_OPT_DOUBLE,
     F(obj.terminal_weight),
     .def = TRC_OBJ_DEF_TERMINAL_WEIGHT,
     .min = 0,
     .max = 1e6,
     .help = "trajectory/mixed: weight of the final-state error |x_T - x*|^2",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "state_weight",
     .type = TRC_OPT_DOUBLE,
     F(obj.state_weight),
     .def = TRC_OBJ_DEF_STATE_WEIGHT,
     .min = 0,
     .max = 1e6,
     .help = "trajectory/mixed: weight of the running state error mean_t |x_t - x*|^2",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "control_weight",
     .type = TRC_OPT_DOUBLE,
     F(obj.control_weight),
     .def = TRC_OBJ_DEF_CONTROL_WEIGHT,
     .min = 0,
     .max = 1e6,
     .help = "trajectory/mixed: weight of the running control cost mean_t |u_t|^2",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "imitation_weight",
     .type = TRC_OPT_DOUBLE,
     F(obj.imitation_weight),
     .def = TRC_OBJ_DEF_IMITATION_WEIGHT,
     .min = 0,
     .max = 1e6,
     .help = "mixed: weight of the imitation MSE added to the trajectory loss",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "process_weight",
     .type = TRC_OPT_DOUBLE,
     F(obj.process_weight),
     .def = TRC_OBJ_DEF_PROCESS_WEIGHT,
     .min = 0,
     .max = 1e6,
     .help = "process: lambda, the weight of process supervision",
     .metavar = "L",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "process_variant",
     .type = TRC_OPT_ENUM,
     F(process_variant),
     .def_str = "corrected",
     .choices = process_variants,
     .help = "process: corrected (stop-gradient on the normaliser and earlier iterate) or "
             "original (differentiated as the original does)",
     .metavar = "NAME",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "process_q",
     .type = TRC_OPT_DOUBLE,
     F(obj.process_q),
     .def = TRC_OBJ_DEF_PROCESS_Q,
     .min = 0,
     .max = 1e6,
     .help = "process: state weight of the trajectory cost, Q = q I",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "process_r",
     .type = TRC_OPT_DOUBLE,
     F(obj.process_r),
     .def = TRC_OBJ_DEF_PROCESS_R,
     .min = 0,
     .max = 1e6,
     .help = "process: control weight of the trajectory cost, R = r I",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "process_qf",
     .type = TRC_OPT_DOUBLE,
     F(obj.process_qf),
     .def = TRC_OBJ_DEF_PROCESS_QF,
     .min = 0,
     .max = 1e6,
     .help = "process: terminal weight of the trajectory cost, Qf = qf I",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    /* v2 (issue 11): trajectory feedback and the key spelling, saved only when not the
     * default. */
    {.name = "feedback",
     .type = TRC_OPT_BOOL,
     F(feedback),
     .def = 0,
     .help = "trajectory feedback: each cycle simulates its incoming iterate on the dataset's "
             "system and feeds the final-state error back (two_level/trm_style, s = 2)",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "tails",
     .type = TRC_OPT_INT,
     F(tails),
     .def = 0,
     .min = 0,
     .max = 64,
     .help = "tails of each expert solution added to the data (from random steps k: the state "
             "x_k, the controls left, the time left (T-k)/T as an input): the model then plans "
             "the rest of a horizon, for a shrinking-horizon closed loop (not with process)",
     .metavar = "K",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "names",
     .type = TRC_OPT_STRING,
     F(names),
     .size = sizeof(((trc_train_opts *)0)->names),
     .def_str = TRC_NAMES_NEW,
     .choice_at = names_at,
     .help = "parameter-name spelling of the checkpoints (the original's versions)",
     .metavar = "NAMES",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
    /* A path on the machine that trains: the command line's only (a server job names none). */
    {.name = "init",
     .type = TRC_OPT_STRING,
     F(init),
     .size = sizeof(((trc_train_opts *)0)->init),
     .def_str = "",
     .def_text = "none",
     .help = "start from this checkpoint's parameters (same architecture, size and shape) "
             "instead of the seeded initialization, e.g. to fine-tune with another objective",
     .metavar = "FILE",
     .where = TRC_OPT_CLI | TRC_OPT_SAVED | TRC_OPT_OMIT_DEFAULT},
    {.name = "normalize",
     .type = TRC_OPT_STRING,
     F(normalize),
     .size = sizeof(((trc_train_opts *)0)->normalize),
     .def_str = "auto",
     .choices = normalize_choices,
     .help = "per-component normalisation of states and controls from the training split "
             "(mean/std, stored in the checkpoint); auto: on for a system whose components "
             "have their own scales (rocket_landing)",
     .metavar = "MODE",
     .where = SAVED | TRC_OPT_OMIT_DEFAULT},
};

static const trc_option_set train_set = {
    .name = "train",
    .about = "training a model: network size, optimizer, schedule, early stopping",
    .options = train_options,
    .count = sizeof train_options / sizeof train_options[0],
};

const trc_option_set *trc_train_option_set(void) {
    return &train_set;
}

void trc_train_opts_default(trc_train_opts *o) {
    memset(o, 0, sizeof *o);
    trc_options_default(train_set.options, train_set.count, o);
    o->threads = 1;
}

double trc_train_effective_gamma(const trc_train_opts *o) {
    if (o->gamma > 0)
        return o->gamma;
    return o->scheduler == TRC_SCHED_PLATEAU ? 0.5 : 0.1;
}

static int terminated(const char *s, size_t cap) {
    return memchr(s, 0, cap) != NULL;
}

/* An objective's weight or a schedule's option set (not the default) for an objective or a
 * schedule that does not read it would be ignored: refused, naming who reads it. */
static int check_applies(const trc_train_opts *o, const trc_objective *obj) {
    for (size_t i = 0; i < train_set.count; i++) {
        const trc_option *opt = &train_set.options[i];
        if (trc_option_is_default(opt, o))
            continue;
        char who[256];
        if (trc_objective_option(opt->name) && !trc_objective_reads(obj, opt->name)) {
            trc_objective_names_reading(opt->name, who, sizeof who);
            return trc_fail(TRC_EINVAL,
                            "%s applies to objective %s; the run's objective %s does not read it",
                            opt->name, who, obj->name);
        }
        if (trc_sched_option(opt->name) &&
            !trc_sched_reads((trc_sched_kind)o->scheduler, opt->name)) {
            size_t len = 0;
            who[0] = '\0';
            for (int k = 0; k <= TRC_SCHED_NONE; k++)
                if (trc_sched_reads((trc_sched_kind)k, opt->name) && len < sizeof who)
                    len += (size_t)snprintf(who + len, sizeof who - len, "%s%s", len ? ", " : "",
                                            trc_sched_name((trc_sched_kind)k));
            return trc_fail(TRC_EINVAL,
                            "%s applies to scheduler %s; the run's scheduler %s does not read it",
                            opt->name, who, trc_sched_name((trc_sched_kind)o->scheduler));
        }
    }
    return TRC_OK;
}

/* Each option against its table line, then the rules that tie two options together. */
int trc_train_opts_validate(const trc_train_opts *o) {
    if (!o)
        return trc_fail(TRC_EINVAL, "training options are NULL");
    if (!terminated(o->arch, sizeof o->arch) || !terminated(o->objective, sizeof o->objective) ||
        !terminated(o->init, sizeof o->init))
        return trc_fail(TRC_EINVAL, "architecture or objective name is not terminated");
    if (!terminated(o->names, sizeof o->names))
        return trc_fail(TRC_EINVAL, "checkpoint names spelling is not terminated");
    if (!o->arch[0]) { /* "" is the default architecture */
        trc_train_opts c = *o;
        snprintf(c.arch, sizeof c.arch, "%s", TRC_ARCH_DEFAULT);
        return trc_train_opts_validate(&c);
    }
    int rc = trc_options_validate(train_set.options, train_set.count, o);
    if (rc)
        return rc;
    const trc_arch *arch = trc_arch_find(o->arch);
    if (!arch || !trc_arch_size_find(arch, o->model_size))
        return trc_fail(TRC_EINVAL, "model_size '%s' is not a size of architecture '%s'",
                        o->model_size, o->arch);
    if (o->feedback && !arch->feedback) /* s = 2 and the system are the data's: checked then */
        return trc_fail(TRC_EINVAL,
                        "feedback: architecture '%s' has no trajectory feedback "
                        "(two_level and trm_style have)",
                        o->arch);
    if (o->threads < 1 || o->threads > 64)
        return trc_fail(TRC_EINVAL, "threads must be in 1..64, got %d", o->threads);
    if (o->weight_decay * o->lr >= 1)
        return trc_fail(TRC_EINVAL, "weight_decay must keep lr * weight_decay < 1, got %g * %g",
                        o->lr, o->weight_decay);
    if (o->scheduler == TRC_SCHED_COSINE && o->lr_min > o->lr)
        return trc_fail(TRC_EINVAL, "lr_min must be in [0, lr], got %g with lr %g", o->lr_min,
                        o->lr);
    if (o->scheduler == TRC_SCHED_PLATEAU && o->gamma >= 1)
        return trc_fail(TRC_EINVAL, "gamma must be below 1 for the plateau scheduler, got %g",
                        o->gamma);
    if (!terminated(o->out_dir, sizeof o->out_dir) ||
        !terminated(o->data_path, sizeof o->data_path))
        return trc_fail(TRC_EINVAL, "output directory or data path is not terminated");
    if (o->resume && !o->out_dir[0])
        return trc_fail(TRC_EINVAL, "resume needs the output directory of the run");
    const trc_objective *obj = trc_train_objective(o);
    if (!obj)
        return trc_fail_prefix(TRC_EINVAL, "objective: ");
    if (o->process_variant != 0 && strcmp(obj->name, "process_original") != 0)
        return trc_fail(TRC_EINVAL, "process_variant original needs objective process, got %s",
                        o->objective);
    if (o->tails > 0 && !obj->time_left) {
        char can[256];
        trc_objective_names_with(0, 1, can, sizeof can);
        return trc_fail(TRC_EINVAL,
                        "tails: objective '%s' cannot score a tail (objectives that can: %s)",
                        obj->name, can);
    }
    if (o->tails > 0 && o->feedback)
        return trc_fail(TRC_EINVAL, "tails: trajectory feedback simulates whole horizons");
    if ((rc = check_applies(o, obj)) != 0)
        return rc;
    return trc_objective_params_check(&o->obj);
}

const trc_objective *trc_train_objective(const trc_train_opts *o) {
    const char *name = o->objective[0] ? o->objective : "imitation";
    const trc_objective *obj = trc_objective_find(name);
    if (obj && o->process_variant == 1 && strcmp(obj->name, "process") == 0)
        obj = trc_objective_find("process_original");
    return obj;
}

/* One saved option as JSON: numbers as numbers (a seed past INT64_MAX as a decimal string),
 * choices by name. */
static json_t *option_json(const trc_option *opt, const trc_train_opts *o) {
    switch (opt->type) {
    case TRC_OPT_INT:
        return json_integer((json_int_t)trc_option_number(opt, o));
    case TRC_OPT_DOUBLE:
        return json_real(trc_option_number(opt, o));
    case TRC_OPT_BOOL:
        return json_boolean(trc_option_number(opt, o) != 0);
    case TRC_OPT_U64: {
        uint64_t v = trc_option_u64(opt, o);
        if (v <= INT64_MAX)
            return json_integer((json_int_t)v);
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return json_string(buf);
    }
    case TRC_OPT_STRING:
    case TRC_OPT_ENUM:
        return json_string(trc_option_text(opt, o));
    }
    return NULL;
}

json_t *trc_train_settings_json(const trc_train_opts *o) {
    const trc_option_set *set = trc_train_option_set();
    json_t *j = json_object();
    for (size_t i = 0; j && i < set->count; i++) {
        const trc_option *opt = &set->options[i];
        if (!(opt->where & TRC_OPT_SAVED) ||
            ((opt->where & TRC_OPT_OMIT_DEFAULT) && trc_option_is_default(opt, o)))
            continue;
        if (json_object_set_new(j, opt->name, option_json(opt, o)) != 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

/* A saved option back into o: the type the table says, within its range. */
static int option_parse(const trc_option *opt, const json_t *v, trc_train_opts *o) {
    int rc;
    switch (opt->type) {
    case TRC_OPT_INT:
        if (!json_is_integer(v))
            return trc_fail(TRC_EFORMAT, "settings: '%s' must be an integer", opt->name);
        rc = trc_option_set_number(opt, (double)json_integer_value(v), o);
        break;
    case TRC_OPT_DOUBLE:
        if (!json_is_number(v))
            return trc_fail(TRC_EFORMAT, "settings: '%s' must be a number", opt->name);
        rc = trc_option_set_number(opt, json_number_value(v), o);
        break;
    case TRC_OPT_BOOL:
        if (!json_is_boolean(v))
            return trc_fail(TRC_EFORMAT, "settings: '%s' must be true or false", opt->name);
        rc = trc_option_set_number(opt, json_is_true(v), o);
        break;
    case TRC_OPT_U64:
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            return trc_option_set_u64(opt, (uint64_t)json_integer_value(v), o);
        if (!json_is_string(v))
            return trc_fail(TRC_EFORMAT, "settings: '%s' must be an unsigned integer", opt->name);
        rc = trc_option_parse(opt, json_string_value(v), NULL, o);
        break;
    default:
        if (!json_is_string(v))
            return trc_fail(TRC_EFORMAT, "settings: '%s' must be a string", opt->name);
        rc = trc_option_set_text(opt, json_string_value(v), o);
        break;
    }
    return rc ? trc_fail_prefix(TRC_EFORMAT, "settings: ") : TRC_OK;
}

/* Every saved option must be there (those saved only when not the default read as the default
 * when missing): a run resumes with exactly the settings it started with. */
int trc_train_settings_parse(const json_t *j, trc_train_opts *o) {
    if (!json_is_object(j))
        return trc_fail(TRC_EFORMAT, "settings: not a JSON object");
    const trc_option_set *set = trc_train_option_set();
    for (size_t i = 0; i < set->count; i++) {
        const trc_option *opt = &set->options[i];
        if (!(opt->where & TRC_OPT_SAVED))
            continue;
        const json_t *v = json_object_get(j, opt->name);
        if (!v && (opt->where & TRC_OPT_OMIT_DEFAULT)) {
            trc_options_default(opt, 1, o);
            continue;
        }
        if (!v)
            return trc_fail(TRC_EFORMAT, "settings: '%s' is missing", opt->name);
        int rc = option_parse(opt, v, o);
        if (rc)
            return rc;
    }
    return TRC_OK;
}
