/* The catalogue of GET /v1/catalog, from core's tables; see catalog.h. */
#include "catalog.h"

#include <string.h>

#include "option_json.h"
#include "train_spec.h"
#include "trc/arch.h"
#include "trc/error.h"
#include "trc/expert.h"
#include "trc/model.h"
#include "trc/objective.h"
#include "trc/polish.h"
#include "trc/settings.h"
#include "trc/system.h"

/* json_array_append_new / json_object_set_new that tolerate a NULL value, recording failure. */
static void add(json_t *arr, json_t *v, int *bad) {
    if (!v || json_array_append_new(arr, v) != 0)
        *bad = 1;
}
static void put(json_t *obj, const char *key, json_t *v, int *bad) {
    if (!v || json_object_set_new(obj, key, v) != 0)
        *bad = 1;
}

static json_t *names_json(const char *const *names, int n) {
    json_t *arr = json_array();
    int bad = !arr;
    for (int i = 0; arr && i < n; i++)
        add(arr, json_string(names && names[i] ? names[i] : ""), &bad);
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *system_json(const trc_system *s) {
    int bad = 0;
    json_t *j = json_object(), *params = json_array();
    if (!j || !params) {
        json_decref(j);
        json_decref(params);
        return NULL;
    }
    for (size_t i = 0; i < s->nparams; i++)
        add(params,
            json_pack("{s:s, s:f, s:s}", "name", s->params[i].name, "value", s->params[i].value,
                      "help", s->params[i].help ? s->params[i].help : ""),
            &bad);
    put(j, "name", json_string(s->name), &bad);
    put(j, "about", json_string(s->about ? s->about : ""), &bad);
    put(j, "state_dim", json_integer(s->s), &bad);
    put(j, "control_dim", json_integer(s->m), &bad);
    put(j, "state_names", names_json(s->state_names, s->s), &bad);
    put(j, "control_names", names_json(s->control_names, s->m), &bad);
    put(j, "linear", json_boolean(s->linear), &bad);
    put(j, "defaults",
        json_pack("{s:i, s:f, s:f, s:[f, f], s:f}", "horizon", s->T, "dt", s->dt, "bound", s->bound,
                  "box", s->box_lo, s->box_hi, "success_threshold", s->success_threshold),
        &bad);
    put(j, "parameters", params, &bad);
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The systems an expert accepts: its own capability check. */
static json_t *accepts_json(const trc_expert *e) {
    json_t *arr = json_array();
    int bad = !arr;
    for (size_t i = 0; arr && i < trc_system_count(); i++)
        if (e->accepts(trc_system_at(i)) == 0)
            add(arr, json_string(trc_system_at(i)->name), &bad);
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *expert_params_json(const trc_expert *e) {
    json_t *arr = json_array();
    int bad = !arr;
    for (size_t i = 0; arr && i < e->nparams; i++)
        add(arr, proto_option_descriptor(&e->params[i]), &bad);
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *experts_json(void) {
    json_t *arr = json_array();
    int bad = !arr;
    for (size_t i = 0; arr && i < trc_expert_count(); i++) {
        const trc_expert *e = trc_expert_at(i);
        add(arr,
            json_pack("{s:s, s:s, s:s, s:o, s:o, s:b}", "name", e->name, "about",
                      e->about ? e->about : "", "cost_label", e->cost_label ? e->cost_label : "",
                      "accepts", accepts_json(e), "parameters", expert_params_json(e), "polish",
                      trc_polish_check(e->name, NULL) == TRC_OK),
            &bad);
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* Every architecture with its sizes; parameter counts for the default system. */
static json_t *architectures_json(void) {
    const trc_system *sys = trc_system_at(0);
    json_t *arr = json_array();
    int bad = !arr || !sys;
    for (size_t i = 0; !bad && i < trc_arch_count(); i++) {
        const trc_arch *a = trc_arch_at(i);
        json_t *sizes = json_array();
        bad |= !sizes;
        for (size_t k = 0; !bad && k < a->nsizes; k++) {
            const trc_arch_size *z = &a->sizes[k];
            trc_model_config cfg;
            if (trc_model_config_preset_arch(a->name, z->name, sys->s, sys->m, sys->T,
                                             (float)sys->bound, &cfg) != 0) {
                bad = 1;
                break;
            }
            add(sizes,
                json_pack("{s:s, s:i, s:i, s:i, s:i, s:I, s:s}", "name", z->name, "d", z->d, "h",
                          z->h, "blocks", z->blocks, "heads", z->heads, "parameters",
                          (json_int_t)trc_model_param_count(&cfg), "parameters_for", sys->name),
                &bad);
        }
        add(arr,
            json_pack("{s:s, s:s, s:b, s:o}", "name", a->name, "about", a->about ? a->about : "",
                      "default", strcmp(a->name, TRC_ARCH_DEFAULT) == 0, "sizes", sizes),
            &bad);
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *objectives_json(void) {
    json_t *arr = json_array();
    int bad = !arr;
    for (size_t i = 0; arr && i < trc_objective_count(); i++) {
        const trc_objective *o = trc_objective_at(i);
        add(arr,
            json_pack("{s:s, s:s, s:b}", "name", o->name, "about", o->about ? o->about : "",
                      "final_only", o->final_only),
            &bad);
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *options_json(const trc_option_set *set) {
    json_t *arr = json_array();
    int bad = !arr;
    for (size_t i = 0; arr && i < set->count; i++)
        add(arr, proto_option_descriptor(&set->options[i]), &bad);
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o}", "name", set->name, "about", set->about, "options", arr);
}

json_t *proto_train_spec_schema(void) {
    trc_train_spec spec;
    trc_train_spec_default(&spec);
    json_t *props = json_object();
    int bad = !props;
    if (props)
        put(props, "name",
            json_pack("{s:[{s:s}], s:s}", "allOf", "$ref", "#/components/schemas/Name",
                      "description", "model name to publish as; default job-<id>"),
            &bad);
    const trc_option *o;
    const void *base;
    for (size_t i = 0; props && (o = trc_train_spec_option(i, &spec, &base)) != NULL; i++)
        put(props, o->name, proto_option_schema(o), &bad);
    if (props)
        put(props, "replace",
            json_pack("{s:s, s:b, s:s}", "type", "boolean", "default", 0, "description",
                      "the result may replace a served model of the same name (else 409)"),
            &bad);
    if (bad) {
        json_decref(props);
        return NULL;
    }
    return json_pack("{s:s, s:b, s:s, s:o}", "type", "object", "additionalProperties", 0,
                     "description",
                     "Every field is optional (defaults shown). Generated from the option "
                     "tables of core/ by `make openapi` (trc catalog --openapi).",
                     "properties", props);
}

json_t *proto_catalog_json(void) {
    json_t *systems = json_array(), *sets = json_array();
    int bad = !systems || !sets;
    for (size_t i = 0; systems && i < trc_system_count(); i++)
        add(systems, system_json(trc_system_at(i)), &bad);
    const trc_option_set *set;
    for (size_t i = 0; sets && (set = trc_option_set_at(i)) != NULL; i++)
        add(sets, options_json(set), &bad);
    if (bad) {
        json_decref(systems);
        json_decref(sets);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "systems", systems, "experts",
                     experts_json(), "architectures", architectures_json(), "objectives",
                     objectives_json(), "option_sets", sets, "train_spec",
                     proto_train_spec_schema());
}
