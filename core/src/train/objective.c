/* The objectives table (objectives.h; each objective in its own file), lookups by name or
 * alias, and the checks every objective shares (weights, the system it simulates). */
#include "trc/objective.h"
#include "trc/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TRC_OBJECTIVE(name) extern const trc_objective trc_objective_##name;
#include "objectives.h"
#undef TRC_OBJECTIVE

static const trc_objective *const objectives[] = {
#define TRC_OBJECTIVE(name) &trc_objective_##name,
#include "objectives.h"
#undef TRC_OBJECTIVE
};

#define NOBJECTIVES (sizeof objectives / sizeof objectives[0])

size_t trc_objective_count(void) {
    return NOBJECTIVES;
}

const trc_objective *trc_objective_at(size_t i) {
    return i < NOBJECTIVES ? objectives[i] : NULL;
}

const char *trc_objective_name_at(size_t i) {
    if (i < NOBJECTIVES)
        return objectives[i]->name;
    i -= NOBJECTIVES;
    for (size_t k = 0; k < NOBJECTIVES; k++)
        if (objectives[k]->alias && i-- == 0)
            return objectives[k]->alias;
    return NULL;
}

const trc_objective *trc_objective_find(const char *name) {
    char known[256] = "";
    for (size_t i = 0; i < NOBJECTIVES; i++) {
        if (name && (strcmp(name, objectives[i]->name) == 0 ||
                     (objectives[i]->alias && strcmp(name, objectives[i]->alias) == 0)))
            return objectives[i];
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", objectives[i]->name);
    }
    trc_fail(TRC_ENOTFOUND, "unknown objective '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

/* The names of the objectives `keep` accepts, ", "-separated, into buf (n bytes). */
static void names_where(int (*keep)(const trc_objective *, const void *), const void *arg,
                        char *buf, size_t n) {
    size_t len = 0;
    if (n)
        buf[0] = '\0';
    for (size_t i = 0; i < NOBJECTIVES && len < n; i++) {
        if (!keep(objectives[i], arg))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", objectives[i]->name);
        len += w > 0 ? (size_t)w : 0;
    }
}

typedef struct needs {
    int normalised, time_left;
} needs;

static int can_train(const trc_objective *o, const void *arg) {
    const needs *w = arg;
    return (!w->normalised || o->normalised) && (!w->time_left || o->time_left);
}

void trc_objective_names_with(int normalised, int time_left, char *buf, size_t n) {
    needs w = {normalised, time_left};
    names_where(can_train, &w, buf, n);
}

int trc_objective_reads(const trc_objective *o, const char *option) {
    for (size_t i = 0; o && o->reads && option && o->reads[i]; i++)
        if (strcmp(o->reads[i], option) == 0)
            return 1;
    return 0;
}

int trc_objective_option(const char *option) {
    for (size_t i = 0; i < NOBJECTIVES; i++)
        if (trc_objective_reads(objectives[i], option))
            return 1;
    return 0;
}

static int reads_option(const trc_objective *o, const void *option) {
    return trc_objective_reads(o, option);
}

void trc_objective_names_reading(const char *option, char *buf, size_t n) {
    names_where(reads_option, option, buf, n);
}

int trc_objective_nterms(const trc_objective *o) {
    int n = 0;
    while (o && o->terms && o->terms[n] && n < TRC_OBJECTIVE_MAX_TERMS)
        n++;
    return n;
}

int trc_objective_check(const trc_objective *o, const trc_system *system) {
    if (!o)
        return trc_fail(TRC_EINVAL, "objective is NULL");
    if (!o->needs_jacobian)
        return TRC_OK;
    if (!system)
        return trc_fail(TRC_EUNSUPPORTED,
                        "objective '%s' simulates the data's system, but the dataset names none "
                        "(generate it with trc generate, or use objective imitation)",
                        o->name);
    if (!system->step || !system->jacobian)
        return trc_fail(TRC_EUNSUPPORTED,
                        "objective '%s' differentiates through the simulator, but system '%s' "
                        "has no Jacobian",
                        o->name, system->name);
    return TRC_OK;
}

void trc_objective_params_default(trc_objective_params *p) {
    *p = (trc_objective_params){
        .imitation_weight = TRC_OBJ_DEF_IMITATION_WEIGHT,
        .terminal_weight = TRC_OBJ_DEF_TERMINAL_WEIGHT,
        .state_weight = TRC_OBJ_DEF_STATE_WEIGHT,
        .control_weight = TRC_OBJ_DEF_CONTROL_WEIGHT,
        .process_weight = TRC_OBJ_DEF_PROCESS_WEIGHT,
        .process_q = TRC_OBJ_DEF_PROCESS_Q,
        .process_r = TRC_OBJ_DEF_PROCESS_R,
        .process_qf = TRC_OBJ_DEF_PROCESS_QF,
    };
}

int trc_objective_params_check(const trc_objective_params *p) {
    if (!p)
        return trc_fail(TRC_EINVAL, "objective weights are NULL");
    const struct {
        const char *name;
        double v;
    } w[] = {{"imitation_weight", p->imitation_weight},
             {"terminal_weight", p->terminal_weight},
             {"state_weight", p->state_weight},
             {"control_weight", p->control_weight},
             {"process_weight", p->process_weight},
             {"process_q", p->process_q},
             {"process_r", p->process_r},
             {"process_qf", p->process_qf}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (!(w[i].v >= 0) || !isfinite(w[i].v))
            return trc_fail(TRC_EINVAL, "%s must be a finite number >= 0, got %g", w[i].name,
                            w[i].v);
    return TRC_OK;
}
