/* The objectives table: one line per objective, TRC_OBJECTIVE(name) for the ops table
 * `const trc_objective trc_objective_<name>` defined in train/<name>.c. The first is the
 * default. Included by objective.c only. */
TRC_OBJECTIVE(mse)
TRC_OBJECTIVE(process)
TRC_OBJECTIVE(process_original)
