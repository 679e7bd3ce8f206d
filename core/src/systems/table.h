/* The systems table: one line per system, TRC_SYSTEM(name) for the descriptor
 * `const trc_system trc_system_<name>` defined in systems/<name>.c. Order = listing order
 * (trc_system_at, the catalogue, help texts). Included by system.c only. */
TRC_SYSTEM(double_integrator)
TRC_SYSTEM(van_der_pol)
TRC_SYSTEM(rocket_landing)
