/* Run-time choice of the kernels' instruction-set path (trc/cpu.h). The CPU is asked once
 * (__builtin_cpu_supports, which also checks that the OS saves the wide registers); TRC_ISA may
 * lower the path, never raise it above what the CPU runs. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc/cpu.h"
#include "trc/error.h"
#include "kernels.h"

static const char *const names[TRC_ISA_COUNT] = {"generic", "avx2", "avx512"};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static trc_isa best = TRC_ISA_GENERIC;
static atomic_int active = TRC_ISA_GENERIC;
static char reason[160] = "best supported";

static int has_bf16;

static trc_isa detect(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    has_bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
    return avx512 ? TRC_ISA_AVX512 : avx2 ? TRC_ISA_AVX2 : TRC_ISA_GENERIC;
#else
    return TRC_ISA_GENERIC;
#endif
}

static void init_once(void) {
    best = detect();
    trc_isa want = best;
    const char *env = getenv("TRC_ISA");
    if (env && *env) {
        trc_isa req;
        if (trc_isa_parse(env, &req) != 0)
            snprintf(reason, sizeof reason,
                     "TRC_ISA='%.40s' is not avx512, avx2 or generic: using %s", env, names[best]);
        else if (req > best)
            snprintf(reason, sizeof reason, "TRC_ISA=%s asked, this CPU runs at most %s: using %s",
                     names[req], names[best], names[best]);
        else {
            want = req;
            snprintf(reason, sizeof reason, "TRC_ISA=%s", names[req]);
        }
    }
    atomic_store(&active, (int)want);
}

trc_isa trc_isa_active(void) {
    pthread_once(&once, init_once);
    return (trc_isa)atomic_load_explicit(&active, memory_order_relaxed);
}

trc_isa trc_isa_best(void) {
    pthread_once(&once, init_once);
    return best;
}

int trc_isa_supported(trc_isa isa) {
    return isa >= TRC_ISA_GENERIC && isa <= trc_isa_best();
}

const char *trc_isa_name(trc_isa isa) {
    return isa >= TRC_ISA_GENERIC && isa < TRC_ISA_COUNT ? names[isa] : "?";
}

int trc_isa_parse(const char *name, trc_isa *isa) {
    for (int i = 0; name && i < TRC_ISA_COUNT; i++)
        if (strcmp(name, names[i]) == 0) {
            *isa = (trc_isa)i;
            return 0;
        }
    return trc_fail(TRC_EINVAL, "unknown instruction-set path '%s' (avx512, avx2 or generic)",
                    name ? name : "(null)");
}

const char *trc_isa_reason(void) {
    pthread_once(&once, init_once);
    return reason;
}

int trc_isa_set(trc_isa isa) {
    if (!trc_isa_supported(isa))
        return trc_fail(TRC_EINVAL,
                        "instruction-set path %s is not supported by this CPU (best: %s)",
                        trc_isa_name(isa), names[trc_isa_best()]);
    atomic_store(&active, (int)isa);
    return 0;
}

int trc_cpu_has_bf16(void) {
    pthread_once(&once, init_once);
    return has_bf16;
}
