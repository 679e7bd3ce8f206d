/* The architectures table: one line per architecture, TRC_ARCH(name) for the ops table
 * `const trc_arch trc_arch_<name>` defined in nn/<name>.c. The first is the default (a
 * checkpoint without "arch" is one) and, for a bare export whose shapes several architectures
 * accept, the one chosen. Included by arch.c only. */
TRC_ARCH(single)
TRC_ARCH(two_level)
TRC_ARCH(trm_style)
