/* Option descriptors: one table line per setting (name, type, default, range, choices, help,
 * unit, where it applies) bound to a field of a C struct by offsetof. The same table then
 * drives the defaults, the parsing of a command-line value, the validation (with a one-line
 * message naming the option), the text of --help, the JSON wire format and the settings saved
 * with a run (proto/ converts to JSON; core has no wire JSON), the OpenAPI schema and the
 * catalogue trcd serves. Adding an option = one line in its table (and the struct field).
 *
 *   static const trc_option opts[] = {
 *       {.name = "lr", .type = TRC_OPT_DOUBLE, .offset = offsetof(my_opts, lr), .def = 1e-3,
 *        .min = 0, .max = 10, .min_open = 1, .help = "learning rate", .where = TRC_OPT_ALL},
 *   };
 */
#ifndef TRC_OPTION_H
#define TRC_OPTION_H

#include <stddef.h>
#include <stdint.h>

typedef enum trc_opt_type {
    TRC_OPT_INT,    /* int field, integer in [min, max] */
    TRC_OPT_U64,    /* uint64_t field, any non-negative integer (seeds) */
    TRC_OPT_DOUBLE, /* double field, finite, in the range */
    TRC_OPT_BOOL,   /* int field, 0 or 1 */
    TRC_OPT_STRING, /* char[size] field; one of the choices when there are any */
    TRC_OPT_ENUM,   /* int (or C enum) field holding the index of one of the choices */
} trc_opt_type;

/* Where an option applies (`where` bits). */
#define TRC_OPT_CLI 1u   /* a flag of the trc command */
#define TRC_OPT_WIRE 2u  /* a field of the JSON wire format (POST /v1/train, the catalogue) */
#define TRC_OPT_SAVED 4u /* recorded with a run (training stats, checkpoint and state metadata) */
#define TRC_OPT_ALL (TRC_OPT_CLI | TRC_OPT_WIRE | TRC_OPT_SAVED)
#define TRC_OPT_RESUMABLE 8u /* a saved setting that may change when the run resumes (epochs) */
/* Saved only when it differs from its default, and a missing key reads as the default: an
 * option added later leaves the settings of earlier runs (and their checkpoints) as they were. */
#define TRC_OPT_OMIT_DEFAULT 16u

typedef struct trc_option {
    const char *name; /* snake_case; the CLI flag is "--" + name with '-' for '_' ("-K" for K) */
    trc_opt_type type;
    size_t offset;       /* offsetof(struct, field) */
    size_t size;         /* TRC_OPT_STRING: the field's capacity (sizeof), terminator included */
    double def;          /* default of the numeric types and BOOL (U64 defaults stay below 2^53) */
    const char *def_str; /* default of STRING, and of ENUM by choice name */
    /* Range of INT/U64/DOUBLE; min == max == 0 means none (DOUBLE still finite); max = HUGE_VAL
     * for no upper bound. min_open/max_open make an end exclusive. */
    double min, max;
    int min_open, max_open;
    /* Tighter upper bound (inclusive) when trcd runs it as a job (memory and time of a shared
     * server); 0 = max. */
    double job_max;
    /* The default is a sentinel meaning "decided elsewhere" (accepted outside the range), e.g.
     * gamma 0 = "0.1 for step, 0.5 for plateau"; auto_text says what happens. NULL = none. */
    const char *auto_text;
    /* The default depends on other settings (e.g. "the system's", filled by the set's own
     * default function); `def` is then not a value to offer. NULL = the default is def/def_str. */
    const char *def_text;
    const char *const *choices;       /* STRING/ENUM: NULL-terminated names, or ... */
    const char *(*choice_at)(size_t); /* ... a listing function (NULL past the end) */
    const char *help;                 /* one line, without the default */
    const char *unit;                 /* "s", "epochs", ... or NULL */
    const char *metavar;              /* CLI value name ("N", "X"; default from the type) */
    unsigned where;                   /* TRC_OPT_* bits */
} trc_option;

/* A named table: what the catalogue lists and a test iterates. */
typedef struct trc_option_set {
    const char *name;  /* "train", "generate" */
    const char *about; /* one line */
    const trc_option *options;
    size_t count;
} trc_option_set;

/* The option named `name` ("batch_size"), or whose CLI flag it is ("--batch-size", "-K"). */
const trc_option *trc_option_find(const trc_option *opts, size_t n, const char *name);

/* The i-th choice of a STRING/ENUM option, NULL past the end (or without choices). */
const char *trc_option_choice(const trc_option *o, size_t i);
/* Index of `text` among the choices, or -1. */
int trc_option_choice_index(const trc_option *o, const char *text);

/* "--batch-size" / "-K" into buf. */
void trc_option_flag(const trc_option *o, char *buf, size_t size);

/* Writes every option's default into the struct at base (auto sentinels included). */
void trc_options_default(const trc_option *opts, size_t n, void *base);

/* 1 when the field holds the default (for a string, also when it is empty). */
int trc_option_is_default(const trc_option *o, const void *base);

/* Copies the option's field from the struct at src to the one at dst. */
void trc_option_copy(const trc_option *o, void *dst, const void *src);

/* Parses text (a CLI value, or a saved setting) into the option's field: syntax, range,
 * choices. On failure returns TRC_EINVAL and the message "<label>: expected <what>, got
 * '<text>'" (label NULL = the option's name). */
int trc_option_parse(const trc_option *o, const char *text, const char *label, void *base);

/* Checks the field's current value: TRC_EINVAL with "<name> must be <what>, got <value>". */
int trc_option_check(const trc_option *o, const void *base);
/* Checks every option; the first failure's status and message. */
int trc_options_validate(const trc_option *opts, size_t n, const void *base);

/* Typed access for converters (proto's JSON, the CLI): numbers of INT/U64/DOUBLE/BOOL/ENUM
 * (the index), text of STRING/ENUM (the choice name). */
double trc_option_number(const trc_option *o, const void *base);
uint64_t trc_option_u64(const trc_option *o, const void *base);
const char *trc_option_text(const trc_option *o, const void *base);
/* Setters that check like parse (range, integer, choices): TRC_EINVAL naming the option. */
int trc_option_set_number(const trc_option *o, double value, void *base);
int trc_option_set_u64(const trc_option *o, uint64_t value, void *base);
int trc_option_set_text(const trc_option *o, const char *text, void *base);

/* The accepted values in words: "an integer in 1..64", "a number in (0, 10]", "one of cosine,
 * step, plateau, none". `job` = 1 applies job_max. */
void trc_option_describe(const trc_option *o, int job, char *buf, size_t size);
/* The default as text: "0.001" (%g), the choice name, auto_text or def_text. */
void trc_option_default_text(const trc_option *o, char *buf, size_t size);
/* The current value as text (%.17g for doubles, so that parse gives it back exactly). */
void trc_option_format(const trc_option *o, const void *base, char *buf, size_t size);
/* The type as a word: "integer", "number", "boolean", "string". */
const char *trc_option_type_name(trc_opt_type type);
/* The effective upper bound (job_max when job and set, else max). */
double trc_option_max(const trc_option *o, int job);

#endif
