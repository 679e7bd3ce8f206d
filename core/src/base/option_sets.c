/* The registry of libtrc's option sets (trc/settings.h): one line per set; each set lives in
 * its own room (data/gen_options.c, train/options.c). */
#include "trc/settings.h"

#include <string.h>

typedef const trc_option_set *(*set_fn)(void);
static const set_fn sets[] = {trc_gen_option_set, trc_train_option_set};

const trc_option_set *trc_option_set_at(size_t i) {
    return i < sizeof sets / sizeof sets[0] ? sets[i]() : NULL;
}

const trc_option_set *trc_option_set_find(const char *name) {
    const trc_option_set *s;
    for (size_t i = 0; name && (s = trc_option_set_at(i)) != NULL; i++)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}
