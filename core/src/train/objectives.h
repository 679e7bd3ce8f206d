/* The objectives table: one line per objective, TRC_OBJECTIVE(name) for the ops table
 * `const trc_objective trc_objective_<name>` defined in train/<file>.c. The first is the
 * default. Included by objective.c only. */
TRC_OBJECTIVE(mse)              /* "imitation" (alias "mse"), mse.c */
TRC_OBJECTIVE(trajectory)       /* trajectory.c */
TRC_OBJECTIVE(mixed)            /* trajectory.c */
TRC_OBJECTIVE(process)          /* process.c */
TRC_OBJECTIVE(process_original) /* process.c */
