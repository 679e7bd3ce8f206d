/* File helpers of trcd's directories: stale temporary files, disk usage, and server paths
 * taken out of messages meant for clients. */
#ifndef TRCD_FILES_H
#define TRCD_FILES_H

#include <stddef.h>
#include <stdint.h>

/* 1 when name is a temporary file of trc_write_file_atomic ("<file>.tmp.<pid>.<n>"). */
int files_is_tmp(const char *name);
/* Deletes every such temporary file under dir (recursively, symlinks not followed): what a
 * kill -9 in the middle of a write leaves. Returns the number removed (logged by the caller). */
int files_remove_stale_tmp(const char *dir);
/* Bytes allocated on disk under dir (0 if it does not exist). */
uint64_t files_disk_usage(const char *dir);
/* Removes dir and everything under it; 0, or -1 with errno. */
int files_remove_tree(const char *dir);
/* Rewrites msg so that paths under dir read relative to it: every "<dir>/" is deleted, both as
 * given and as resolved by realpath. */
void files_scrub(char *msg, const char *dir);

#endif
