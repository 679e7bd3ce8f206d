/* libtrc's option sets: the tables of trc/option.h for training (bound to trc_train_opts) and
 * data generation (bound to trc_gen_request). The trc command's flags and --help, the JSON of
 * POST /v1/train, the settings saved with a run, the OpenAPI schema and GET /v1/catalog all
 * come from these tables. A new setting = its struct field + one line in its table. */
#ifndef TRC_SETTINGS_H
#define TRC_SETTINGS_H

#include "trc/dataset.h"
#include "trc/option.h"
#include "trc/train.h"

/* What a dataset generation asks for: the settings and how many samples. */
typedef struct trc_gen_request {
    trc_gen_settings settings;
    int num_samples;
} trc_gen_request;

/* "train": every field of trc_train_opts that shapes a run (the SAVED ones are exactly the
 * settings a resumed run keeps). */
const trc_option_set *trc_train_option_set(void);
/* "generate": system, expert, samples, horizon, time step, bound, box, seed (the expert's own
 * parameters are its descriptors, trc_expert.params). The defaults of horizon, dt, bound and
 * box are the system's (trc_gen_request_default). */
const trc_option_set *trc_gen_option_set(void);

/* Every option set of libtrc (train, generate): NULL past the end. */
const trc_option_set *trc_option_set_at(size_t i);
const trc_option_set *trc_option_set_find(const char *name);

/* The defaults of a generation for a system (NULL: double_integrator): the system's horizon,
 * dt, bound and box, the other options' table defaults. TRC_ENOTFOUND for an unknown system. */
int trc_gen_request_default(const char *system, trc_gen_request *req);

#endif
