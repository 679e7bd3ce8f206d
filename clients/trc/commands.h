/* The trc subcommands. Each takes argc/argv with argv[0] = the command name and returns the
 * process exit status (0 ok, 1 failed run, 2 bad usage), printing errors as one line
 * "trc <cmd>: <message>" on stderr. A new command = a cmd_<name>.c file, a prototype here,
 * and one line in main.c's table. */
#ifndef TRC_COMMANDS_H
#define TRC_COMMANDS_H

int cmd_generate(int argc, char **argv); /* cmd_generate.c */
int cmd_eval(int argc, char **argv);     /* cmd_eval.c */
int cmd_compare(int argc, char **argv);  /* cmd_eval.c */
int cmd_train(int argc, char **argv);    /* cmd_train.c */
int cmd_predict(int argc, char **argv);  /* cmd_predict.c */
int cmd_info(int argc, char **argv);     /* cmd_info.c */
int cmd_catalog(int argc, char **argv);  /* cmd_catalog.c */
int cmd_merge(int argc, char **argv);    /* cmd_merge.c */
int cmd_dagger(int argc, char **argv);   /* cmd_dagger.c */

#endif
