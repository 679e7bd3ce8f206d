/* The objectives table (objectives.h; each objective in its own file). */
#include "trc/objective.h"
#include "trc/error.h"

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

const trc_objective *trc_objective_find(const char *name) {
    char known[256] = "";
    for (size_t i = 0; i < NOBJECTIVES; i++) {
        if (name && strcmp(name, objectives[i]->name) == 0)
            return objectives[i];
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", objectives[i]->name);
    }
    trc_fail(TRC_ENOTFOUND, "unknown objective '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}
