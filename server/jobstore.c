/* SQLite job store; see jobstore.h. One connection, prepared statements, one mutex. Times are
 * stored as REAL Unix seconds (NULL = not yet), the spec as its full JSON text, NaN as NULL. */
#include "jobstore.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc/error.h"

enum {
    ST_INSERT,
    ST_GET,
    ST_LIST_PAGE,
    ST_TERMINAL,
    ST_EPOCHS,
    ST_COUNT,
    ST_RUNNING,
    ST_QUEUED,
    ST_FINISH,
    ST_PROGRESS,
    ST_PUT_EPOCH,
    ST_TRIM,
    ST_DELETE_EPOCHS,
    ST_DELETE,
    ST_RECOVER,
    ST_N
};

#define JOB_COLS                                                                                   \
    "id, name, status, spec, created_at, started_at, finished_at, result_model, "                  \
    "result_checkpoint, error, epoch, epochs"

static const char *const sql_text[ST_N] = {
    [ST_INSERT] = "INSERT INTO jobs (" JOB_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?",
    [ST_LIST_PAGE] = "SELECT " JOB_COLS ", seq FROM jobs WHERE (?1 IS NULL OR status = ?1) "
                     "AND (?2 <= 0 OR seq < ?2) ORDER BY seq DESC LIMIT ?3",
    [ST_TERMINAL] = "SELECT id, finished_at FROM jobs WHERE status IN "
                    "('succeeded','failed','cancelled') ORDER BY seq DESC",
    [ST_EPOCHS] = "SELECT epoch, train_loss, val_loss, lr, seconds, samples_per_sec, terms "
                  "FROM epochs WHERE job_id = ? ORDER BY epoch",
    [ST_COUNT] = "SELECT status, count(*) FROM jobs GROUP BY status",
    [ST_RUNNING] = "UPDATE jobs SET status = 'running', started_at = ?, finished_at = NULL, "
                   "error = NULL WHERE id = ?",
    [ST_QUEUED] = "UPDATE jobs SET status = 'queued', finished_at = NULL, error = NULL, "
                  "result_model = NULL, result_checkpoint = NULL WHERE id = ?",
    [ST_FINISH] = "UPDATE jobs SET status = ?, finished_at = ?, error = ?, result_model = ?, "
                  "result_checkpoint = ? WHERE id = ?",
    [ST_PROGRESS] = "UPDATE jobs SET epoch = ?, epochs = ? WHERE id = ?",
    [ST_PUT_EPOCH] = "INSERT OR REPLACE INTO epochs (job_id, epoch, train_loss, val_loss, lr, "
                     "seconds, samples_per_sec, terms) VALUES (?,?,?,?,?,?,?,?)",
    [ST_TRIM] = "DELETE FROM epochs WHERE job_id = ? AND epoch > ?",
    [ST_DELETE_EPOCHS] = "DELETE FROM epochs WHERE job_id = ?",
    [ST_DELETE] = "DELETE FROM jobs WHERE id = ?",
    [ST_RECOVER] = "UPDATE jobs SET status = 'failed', finished_at = ?, error = ? "
                   "WHERE status = 'running'",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN "
    "  ('queued','running','succeeded','failed','cancelled')),"
    " spec TEXT NOT NULL,"
    " created_at REAL NOT NULL, started_at REAL, finished_at REAL,"
    " result_model TEXT, result_checkpoint TEXT, error TEXT,"
    " epoch INTEGER NOT NULL DEFAULT 0, epochs INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);"
    "CREATE TABLE IF NOT EXISTS epochs ("
    " job_id TEXT NOT NULL, epoch INTEGER NOT NULL,"
    " train_loss REAL, val_loss REAL, lr REAL, seconds REAL, samples_per_sec REAL,"
    " terms TEXT,"
    " PRIMARY KEY (job_id, epoch)) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

struct jobstore {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    pthread_mutex_t mu;
};

static int db_fail(jobstore *js, const char *what) {
    return trc_fail(TRC_EIO, "job store: %s: %s", what, sqlite3_errmsg(js->db));
}

/* A store written before the objectives had named terms lacks epochs.terms: add it. */
static int add_terms_column(sqlite3 *db, char **msg) {
    sqlite3_stmt *probe = NULL;
    int have = sqlite3_prepare_v2(db, "SELECT terms FROM epochs LIMIT 0", -1, &probe, NULL);
    sqlite3_finalize(probe);
    if (have == SQLITE_OK)
        return SQLITE_OK;
    return sqlite3_exec(db, "ALTER TABLE epochs ADD COLUMN terms TEXT", NULL, NULL, msg);
}

int jobstore_open(const char *path, jobstore **out) {
    *out = NULL;
    if (!path || !*path)
        return trc_fail(TRC_EINVAL, "job store: empty database path");
    jobstore *js = calloc(1, sizeof *js);
    if (!js)
        return trc_fail(TRC_ENOMEM, "job store: out of memory");
    pthread_mutex_init(&js->mu, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    int rc = TRC_OK;
    if (sqlite3_open_v2(path, &js->db, flags, NULL) != SQLITE_OK) {
        rc = trc_fail(TRC_EIO, "job store: cannot open %s: %s", path,
                      js->db ? sqlite3_errmsg(js->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(js->db, 5000);
    /* WAL: readers never block the writer, and a kill -9 loses no committed transaction. */
    char *msg = NULL;
    if (sqlite3_exec(js->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     &msg) != SQLITE_OK ||
        sqlite3_exec(js->db, schema, NULL, NULL, &msg) != SQLITE_OK ||
        add_terms_column(js->db, &msg) != SQLITE_OK) {
        rc = trc_fail(TRC_EIO, "job store: %s: %s", path, msg ? msg : "schema failed");
        sqlite3_free(msg);
        goto fail;
    }
    for (int i = 0; i < ST_N; i++) {
        if (sqlite3_prepare_v3(js->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &js->st[i],
                               NULL) != SQLITE_OK) {
            rc = db_fail(js, "prepare");
            goto fail;
        }
    }
    *out = js;
    return TRC_OK;
fail:
    jobstore_close(js);
    return rc;
}

void jobstore_close(jobstore *js) {
    if (!js)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(js->st[i]);
    if (js->db)
        sqlite3_close(js->db);
    pthread_mutex_destroy(&js->mu);
    free(js);
}

/* Binds helpers: NULL text or zero time become SQL NULL. */
static void bind_text(sqlite3_stmt *s, int i, const char *v) {
    if (v && *v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static void bind_time(sqlite3_stmt *s, int i, double t) {
    if (t > 0)
        sqlite3_bind_double(s, i, t);
    else
        sqlite3_bind_null(s, i);
}

static void bind_real(sqlite3_stmt *s, int i, double v) {
    if (isfinite(v))
        sqlite3_bind_double(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static double col_real(sqlite3_stmt *s, int i) {
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

static void col_copy(sqlite3_stmt *s, int i, char *dst, size_t size) {
    const unsigned char *v = sqlite3_column_text(s, i);
    snprintf(dst, size, "%s", v ? (const char *)v : "");
}

/* Runs a statement that returns no rows; *changes (may be NULL) gets the rows touched. */
static int run(jobstore *js, sqlite3_stmt *s, const char *what, int *changes) {
    int rc = sqlite3_step(s);
    int ret = rc == SQLITE_DONE ? TRC_OK : db_fail(js, what);
    if (rc == SQLITE_CONSTRAINT)
        ret = TRC_EINVAL;
    if (changes)
        *changes = sqlite3_changes(js->db);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ret;
}

int jobstore_insert(jobstore *js, const trc_job *job) {
    json_t *spec = trc_train_spec_to_json(&job->spec);
    char *spec_text = spec ? json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(spec);
    if (!spec_text)
        return trc_fail(TRC_ENOMEM, "job store: cannot encode the spec");
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_INSERT];
    bind_text(s, 1, job->id);
    bind_text(s, 2, job->name);
    bind_text(s, 3, trc_job_status_name(job->status));
    bind_text(s, 4, spec_text);
    bind_time(s, 5, job->created_at);
    bind_time(s, 6, job->started_at);
    bind_time(s, 7, job->finished_at);
    bind_text(s, 8, job->result_model);
    bind_text(s, 9, job->result_checkpoint);
    bind_text(s, 10, job->error);
    sqlite3_bind_int(s, 11, job->epoch);
    sqlite3_bind_int(s, 12, job->epochs);
    int rc = run(js, s, "insert", NULL);
    pthread_mutex_unlock(&js->mu);
    free(spec_text);
    if (rc == TRC_EINVAL)
        return trc_fail(TRC_EINVAL, "job store: job %s already exists or is malformed", job->id);
    return rc;
}

/* Reads the history of one job into job->history (caller holds the lock). */
static int read_history(jobstore *js, trc_job *job) {
    sqlite3_stmt *s = js->st[ST_EPOCHS];
    sqlite3_bind_text(s, 1, job->id, -1, SQLITE_TRANSIENT);
    size_t cap = 0;
    int rc = TRC_OK, step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (job->n_history == cap) {
            cap = cap ? cap * 2 : 16;
            trc_job_epoch *h = realloc(job->history, cap * sizeof *h);
            if (!h) {
                rc = trc_fail(TRC_ENOMEM, "job store: out of memory reading history");
                break;
            }
            job->history = h;
        }
        trc_job_epoch *e = &job->history[job->n_history++];
        e->epoch = sqlite3_column_int(s, 0);
        e->train_loss = col_real(s, 1);
        e->val_loss = col_real(s, 2);
        e->lr = col_real(s, 3);
        e->seconds = col_real(s, 4);
        e->samples_per_sec = col_real(s, 5);
        const unsigned char *terms = sqlite3_column_text(s, 6);
        snprintf(e->terms, sizeof e->terms, "%s", terms ? (const char *)terms : "");
    }
    if (rc == TRC_OK && step != SQLITE_DONE)
        rc = db_fail(js, "read history");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* Fills job from the current row of a JOB_COLS statement (caller holds the lock). */
static int read_row(sqlite3_stmt *s, trc_job *job) {
    memset(job, 0, sizeof *job);
    col_copy(s, 0, job->id, sizeof job->id);
    col_copy(s, 1, job->name, sizeof job->name);
    const char *st = (const char *)sqlite3_column_text(s, 2);
    if (!st || trc_job_status_parse(st, &job->status) != TRC_OK)
        return trc_fail(TRC_EFORMAT, "job store: job %s has an unknown status", job->id);
    const char *spec_text = (const char *)sqlite3_column_text(s, 3);
    json_error_t jerr;
    json_t *spec = spec_text ? json_loads(spec_text, 0, &jerr) : NULL;
    proto_error serr;
    int rc = spec ? trc_train_spec_read(spec, &job->spec, &serr) : -1;
    json_decref(spec);
    if (rc != TRC_OK)
        return trc_fail(TRC_EFORMAT, "job store: job %s has a malformed spec", job->id);
    double t;
    job->created_at = isnan(t = col_real(s, 4)) ? 0 : t;
    job->started_at = isnan(t = col_real(s, 5)) ? 0 : t;
    job->finished_at = isnan(t = col_real(s, 6)) ? 0 : t;
    col_copy(s, 7, job->result_model, sizeof job->result_model);
    col_copy(s, 8, job->result_checkpoint, sizeof job->result_checkpoint);
    col_copy(s, 9, job->error, sizeof job->error);
    job->epoch = sqlite3_column_int(s, 10);
    job->epochs = sqlite3_column_int(s, 11);
    job->fraction = job->status == TRC_JOB_SUCCEEDED ? 1.0
                    : job->epochs > 0                ? (double)job->epoch / job->epochs
                                                     : 0.0;
    job->eta_seconds = job->status == TRC_JOB_SUCCEEDED ? 0.0 : -1.0;
    return TRC_OK;
}

int jobstore_get(jobstore *js, const char *id, trc_job *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_GET];
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(s);
    int rc;
    if (step == SQLITE_ROW)
        rc = read_row(s, out);
    else if (step == SQLITE_DONE)
        rc = trc_fail(TRC_ENOTFOUND, "job %s not found", id);
    else
        rc = db_fail(js, "get");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc == TRC_OK)
        rc = read_history(js, out);
    pthread_mutex_unlock(&js->mu);
    if (rc != TRC_OK)
        trc_job_free(out);
    return rc;
}

void jobstore_free_list(trc_job *jobs, size_t n) {
    for (size_t i = 0; i < n; i++)
        trc_job_free(&jobs[i]);
    free(jobs);
}

int jobstore_list_page(jobstore *js, int status, long long before, size_t limit, trc_job **out,
                       size_t *n, long long *next) {
    *out = NULL;
    *n = 0;
    if (next)
        *next = 0;
    if (status >= TRC_JOB_NSTATUS)
        return trc_fail(TRC_EINVAL, "job store: bad status filter %d", status);
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_LIST_PAGE];
    if (status >= 0)
        sqlite3_bind_text(s, 1, trc_job_status_name((trc_job_status)status), -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 1);
    sqlite3_bind_int64(s, 2, before);
    /* one row more than asked tells whether there is a next page */
    sqlite3_bind_int64(s, 3, limit ? (sqlite3_int64)limit + 1 : -1);
    trc_job *jobs = NULL;
    size_t count = 0, cap = 0;
    long long last_seq = 0;
    int rc = TRC_OK, step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (limit && count == limit) {
            if (next)
                *next = last_seq;
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            trc_job *grown = realloc(jobs, cap * sizeof *grown);
            if (!grown) {
                rc = trc_fail(TRC_ENOMEM, "job store: out of memory listing jobs");
                break;
            }
            jobs = grown;
        }
        if ((rc = read_row(s, &jobs[count])) != TRC_OK)
            break;
        last_seq = sqlite3_column_int64(s, 12);
        count++;
    }
    if (rc == TRC_OK && step != SQLITE_DONE)
        rc = db_fail(js, "list");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    for (size_t i = 0; rc == TRC_OK && i < count; i++)
        rc = read_history(js, &jobs[i]);
    pthread_mutex_unlock(&js->mu);
    if (rc != TRC_OK) {
        jobstore_free_list(jobs, count);
        if (next)
            *next = 0;
        return rc;
    }
    *out = jobs;
    *n = count;
    return TRC_OK;
}

int jobstore_list(jobstore *js, int status, trc_job **out, size_t *n) {
    return jobstore_list_page(js, status, 0, 0, out, n, NULL);
}

int jobstore_expired(jobstore *js, size_t keep, double before, char (**ids)[TRC_JOB_ID_MAX],
                     size_t *n) {
    *ids = NULL;
    *n = 0;
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_TERMINAL];
    size_t seen = 0, cap = 0;
    int rc = TRC_OK, step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        double fin = col_real(s, 1);
        int old = before > 0 && !isnan(fin) && fin < before;
        if (seen++ < keep && !old)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char(*grown)[TRC_JOB_ID_MAX] = realloc(*ids, cap * sizeof *grown);
            if (!grown) {
                rc = trc_fail(TRC_ENOMEM, "job store: out of memory");
                break;
            }
            *ids = grown;
        }
        col_copy(s, 0, (*ids)[*n], TRC_JOB_ID_MAX);
        (*n)++;
    }
    if (rc == TRC_OK && step != SQLITE_DONE)
        rc = db_fail(js, "list finished jobs");
    sqlite3_reset(s);
    pthread_mutex_unlock(&js->mu);
    if (rc != TRC_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int jobstore_count(jobstore *js, long counts[TRC_JOB_NSTATUS]) {
    for (int i = 0; i < TRC_JOB_NSTATUS; i++)
        counts[i] = 0;
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_COUNT];
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        trc_job_status st;
        const char *name = (const char *)sqlite3_column_text(s, 0);
        if (name && trc_job_status_parse(name, &st) == TRC_OK)
            counts[st] = sqlite3_column_int64(s, 1);
    }
    int rc = step == SQLITE_DONE ? TRC_OK : db_fail(js, "count");
    sqlite3_reset(s);
    pthread_mutex_unlock(&js->mu);
    return rc;
}

/* Runs an UPDATE/DELETE keyed by a job id; TRC_ENOTFOUND when no row matched. */
static int run_keyed(jobstore *js, sqlite3_stmt *s, const char *id, const char *what) {
    int changes = 0;
    int rc = run(js, s, what, &changes);
    if (rc == TRC_OK && changes == 0)
        rc = trc_fail(TRC_ENOTFOUND, "job %s not found", id);
    return rc;
}

int jobstore_mark_running(jobstore *js, const char *id, double started_at) {
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_RUNNING];
    bind_time(s, 1, started_at);
    bind_text(s, 2, id);
    int rc = run_keyed(js, s, id, "mark running");
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int jobstore_mark_queued(jobstore *js, const char *id) {
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_QUEUED];
    bind_text(s, 1, id);
    int rc = run_keyed(js, s, id, "mark queued");
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int jobstore_finish(jobstore *js, const char *id, trc_job_status status, double finished_at,
                    const char *error, const char *result_model, const char *result_checkpoint) {
    if (!trc_job_status_terminal(status))
        return trc_fail(TRC_EINVAL, "job store: %s is not a terminal status",
                        trc_job_status_name(status));
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_FINISH];
    bind_text(s, 1, trc_job_status_name(status));
    bind_time(s, 2, finished_at);
    bind_text(s, 3, error);
    bind_text(s, 4, result_model);
    bind_text(s, 5, result_checkpoint);
    bind_text(s, 6, id);
    int rc = run_keyed(js, s, id, "finish");
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int jobstore_set_progress(jobstore *js, const char *id, int epoch, int epochs) {
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_PROGRESS];
    sqlite3_bind_int(s, 1, epoch);
    sqlite3_bind_int(s, 2, epochs);
    bind_text(s, 3, id);
    int rc = run_keyed(js, s, id, "progress");
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int jobstore_put_epoch(jobstore *js, const char *id, const trc_job_epoch *e) {
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_PUT_EPOCH];
    bind_text(s, 1, id);
    sqlite3_bind_int(s, 2, e->epoch);
    bind_real(s, 3, e->train_loss);
    bind_real(s, 4, e->val_loss);
    bind_real(s, 5, e->lr);
    bind_real(s, 6, e->seconds);
    bind_real(s, 7, e->samples_per_sec);
    if (e->terms[0])
        bind_text(s, 8, e->terms);
    else
        sqlite3_bind_null(s, 8);
    int rc = run(js, s, "put epoch", NULL);
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int jobstore_trim_epochs(jobstore *js, const char *id, int keep) {
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_TRIM];
    bind_text(s, 1, id);
    sqlite3_bind_int(s, 2, keep);
    int rc = run(js, s, "trim epochs", NULL);
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int jobstore_delete(jobstore *js, const char *id) {
    pthread_mutex_lock(&js->mu);
    /* Both deletes in one transaction: a crash never leaves history without its job. */
    int rc = sqlite3_exec(js->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                 ? TRC_OK
                 : db_fail(js, "begin");
    if (rc == TRC_OK) {
        sqlite3_stmt *s = js->st[ST_DELETE_EPOCHS];
        bind_text(s, 1, id);
        rc = run(js, s, "delete history", NULL);
    }
    if (rc == TRC_OK) {
        sqlite3_stmt *s = js->st[ST_DELETE];
        bind_text(s, 1, id);
        rc = run_keyed(js, s, id, "delete");
    }
    if (rc == TRC_OK && sqlite3_exec(js->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(js, "commit");
    if (rc != TRC_OK && !sqlite3_get_autocommit(js->db))
        sqlite3_exec(js->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int jobstore_recover(jobstore *js, double now, const char *reason, int *n_failed) {
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *s = js->st[ST_RECOVER];
    bind_time(s, 1, now);
    bind_text(s, 2, reason);
    int changes = 0;
    int rc = run(js, s, "recover", &changes);
    pthread_mutex_unlock(&js->mu);
    if (n_failed)
        *n_failed = rc == TRC_OK ? changes : 0;
    return rc;
}
