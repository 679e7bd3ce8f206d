/* The experts table: one line per expert, TRC_EXPERT(name) for the ops table
 * `const trc_expert trc_expert_<name>` defined in experts/<name>.c. Order = listing order.
 * Included by expert.c only. */
TRC_EXPERT(min_energy)
TRC_EXPERT(lqr)
TRC_EXPERT(lqr_finite)
TRC_EXPERT(ilqr)
TRC_EXPERT(min_energy_ct)
