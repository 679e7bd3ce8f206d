/* The data generation options: one table line per setting of trc_gen_request (trc/settings.h).
 * System and expert choices come from their own tables; horizon, time step, bound and box
 * default to the chosen system's (trc_gen_request_default). The expert's own parameters are
 * its descriptors (trc_expert.params), not lines here. */
#include "trc/error.h"
#include "trc/expert.h"
#include "trc/settings.h"
#include "trc/system.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* trc_gen_settings_validate checks a settings struct against these lines. */
_Static_assert(offsetof(trc_gen_request, settings) == 0, "settings first");

static const char *system_name_at(size_t i) {
    const trc_system *s = trc_system_at(i);
    return s ? s->name : NULL;
}

#define F(field) .offset = offsetof(trc_gen_request, field)
#define SIZE(field) .size = sizeof(((trc_gen_request *)0)->field)
#define SYS "the system's"

static const trc_option gen_options[] = {
    {.name = "system",
     .type = TRC_OPT_STRING,
     F(settings.system),
     SIZE(settings.system),
     .def_str = "double_integrator",
     .choice_at = system_name_at,
     .help = "dynamical system",
     .metavar = "NAME",
     .where = TRC_OPT_ALL},
    {.name = "expert",
     .type = TRC_OPT_STRING,
     F(settings.expert),
     SIZE(settings.expert),
     .def_str = "min_energy",
     .choice_at = trc_expert_name_at,
     .help = "optimal-control solver whose controls the network imitates",
     .metavar = "NAME",
     .where = TRC_OPT_ALL},
    {.name = "num_samples",
     .type = TRC_OPT_INT,
     F(num_samples),
     .def = 10000,
     .min = 1,
     .max = 1e8,
     .job_max = 1000000,
     .help = "number of samples",
     .unit = "samples",
     .where = TRC_OPT_CLI | TRC_OPT_WIRE},
    {.name = "seed",
     .type = TRC_OPT_U64,
     F(settings.seed),
     .def = 42,
     .help = "random seed of the states and targets",
     .metavar = "S",
     .where = TRC_OPT_CLI | TRC_OPT_SAVED},
    {.name = "horizon",
     .type = TRC_OPT_INT,
     F(settings.T),
     .def_text = SYS,
     .min = 1,
     .max = 100000,
     .help = "control steps",
     .unit = "steps",
     .metavar = "T",
     .where = TRC_OPT_CLI | TRC_OPT_SAVED},
    {.name = "dt",
     .type = TRC_OPT_DOUBLE,
     F(settings.dt),
     .def_text = SYS,
     .min = 0,
     .max = HUGE_VAL,
     .min_open = 1,
     .help = "time step",
     .unit = "s",
     .metavar = "DT",
     .where = TRC_OPT_CLI | TRC_OPT_SAVED},
    {.name = "bound",
     .type = TRC_OPT_DOUBLE,
     F(settings.bound),
     .def_text = SYS,
     .min = 0,
     .max = HUGE_VAL,
     .min_open = 1,
     .help = "control bound |u| <= B",
     .metavar = "B",
     .where = TRC_OPT_CLI | TRC_OPT_SAVED},
    {.name = "box_lo",
     .type = TRC_OPT_DOUBLE,
     F(settings.box_lo),
     .def_text = SYS,
     .min = -1e12,
     .max = 1e12,
     .help = "lower edge of the sampling box of states and targets",
     .metavar = "LO",
     .where = TRC_OPT_CLI | TRC_OPT_SAVED},
    {.name = "box_hi",
     .type = TRC_OPT_DOUBLE,
     F(settings.box_hi),
     .def_text = SYS,
     .min = -1e12,
     .max = 1e12,
     .help = "upper edge of the sampling box (above box_lo)",
     .metavar = "HI",
     .where = TRC_OPT_CLI | TRC_OPT_SAVED},
};

static const trc_option_set gen_set = {
    .name = "generate",
    .about = "generating a dataset: system, expert, samples, horizon, time step, bound, box, seed",
    .options = gen_options,
    .count = sizeof gen_options / sizeof gen_options[0],
};

const trc_option_set *trc_gen_option_set(void) {
    return &gen_set;
}

int trc_gen_request_default(const char *system, trc_gen_request *req) {
    /* system may point into req (a request re-defaulted for its own system): copy it first */
    char name[sizeof req->settings.system] = "";
    if (system)
        snprintf(name, sizeof name, "%s", system);
    memset(req, 0, sizeof *req);
    trc_options_default(gen_set.options, gen_set.count, req);
    const trc_system *sys = trc_system_find(system ? name : req->settings.system);
    if (!sys)
        return TRC_ENOTFOUND;
    trc_gen_settings *g = &req->settings;
    snprintf(g->system, sizeof g->system, "%s", sys->name);
    g->T = sys->T;
    g->dt = sys->dt;
    g->bound = sys->bound;
    g->box_lo = sys->box_lo;
    g->box_hi = sys->box_hi;
    g->target_lo = sys->target_box ? sys->target_box[0] : NAN; /* NAN: the states' box */
    g->target_hi = sys->target_box ? sys->target_box[1] : NAN;
    return TRC_OK;
}
