/*
 * docker_json: pure parsers for the Docker Engine API responses the agent
 * uses (API 1.41; older and newer engines send the same fields), plus a
 * bounded line splitter for the never-ending /events stream.
 *
 *   GET /containers/json?all=1   -> docker_parse_list
 *   GET /containers/{id}/json    -> docker_parse_inspect
 *   GET /events (one object/line) -> docker_stream_feed -> docker_parse_event
 *   GET /version                 -> docker_parse_version
 *
 * Every parser is a function of (buf, len) only: the buffer need not be
 * NUL-terminated and is never read past len; no globals, no I/O, no logging.
 * The whole buffer must hold exactly one JSON object (or array for the list);
 * trailing whitespace is allowed.
 *
 * Errors: 0 on success, -EPROTO for input that is not JSON or does not have the
 * expected shape (a required field missing, any known field of the wrong JSON
 * type), -EMSGSIZE for input above DOCKER_JSON_MAX, -ENOMEM. A field that is
 * absent or JSON null is "missing", which is only an error for the fields
 * named required below. On error the output struct is left zeroed and nothing
 * is leaked; docker_*_free() is safe on it either way. (jansson reports some
 * allocation failures inside its decoder as syntax errors, so running out of
 * memory while decoding may surface as -EPROTO rather than -ENOMEM.)
 *
 * Memory: every string in an output struct is a separate malloc'ed,
 * NUL-terminated copy owned by that struct and released by its docker_*_free()
 * (which zeroes the struct). After a successful parse no string pointer is
 * NULL: a missing optional string is "". Strings never contain NUL bytes
 * (JSON "\u0000" is rejected as -EPROTO).
 */
#ifndef TETHER_DOCKER_JSON_H
#define TETHER_DOCKER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest document a parser accepts (a list of ~20k containers fits). */
#define DOCKER_JSON_MAX ((size_t)64 << 20)

/* One entry of GET /containers/json. Required: Id. */
struct docker_container {
    char *id;                  /* Id: full 64-hex container id */
    char *name;                /* first of Names without its leading '/'; "" when none */
    char *image;               /* Image as the user named it, e.g. "tether-test:busybox" */
    char *state;               /* State: "running", "exited", "created", "paused", ... */
    size_t nlabels;            /* entries in label_keys/label_values */
    char **label_keys;         /* Labels keys, in document order */
    char **label_values;       /* Labels values, same order */
};

/* GET /containers/json: a JSON array of containers (may be empty). */
struct docker_list {
    size_t n;                  /* entries in c */
    struct docker_container *c; /* NULL when n == 0 */
};

/* Parses a container list into *out (zeroed first). 0 / -EPROTO / -EMSGSIZE / -ENOMEM. */
int docker_parse_list(const char *buf, size_t len, struct docker_list *out);
/* Frees everything docker_parse_list allocated and zeroes *list. NULL-safe. */
void docker_list_free(struct docker_list *list);

/* GET /containers/{id}/json. Required: Id. */
struct docker_inspect {
    char *id;                  /* Id */
    char *name;                /* Name without its leading '/' */
    char *image;               /* Config.Image (as named by the user, not the sha256 Image) */
    char *status;              /* State.Status: "running", "exited", ... */
    char *health;              /* State.Health.Status ("healthy", "unhealthy", "starting"); "" without a health check */
    char *cgroup_parent;       /* HostConfig.CgroupParent; "" = the engine's default parent */
    size_t nlabels;            /* entries in label_keys/label_values */
    char **label_keys;         /* Config.Labels keys, in document order */
    char **label_values;       /* Config.Labels values */
    int pid;                   /* State.Pid: main process in the host pid namespace; 0 when not running */
    int exit_code;             /* State.ExitCode (meaningful once exited) */
    bool running;              /* State.Running */
    bool oom_killed;           /* State.OOMKilled */
    bool tty;                  /* Config.Tty: attach/logs are raw, not 8-byte framed */
    double started_at;         /* State.StartedAt as unix seconds (ns precision); 0 for Go's zero time / missing */
    double finished_at;        /* State.FinishedAt likewise */
};

/* Parses an inspect response into *out (zeroed first). 0 / -EPROTO / -EMSGSIZE / -ENOMEM. */
int docker_parse_inspect(const char *buf, size_t len, struct docker_inspect *out);
/* Frees the strings and label arrays and zeroes *ins. NULL-safe. */
void docker_inspect_free(struct docker_inspect *ins);

/*
 * One /events object. Required: Action or (older engines) status. The action
 * is split at the first ':' so that "health_status: healthy" gives action
 * "health_status" and detail "healthy", "exec_start: sh -c true" gives
 * "exec_start" and "sh -c true" (leading and trailing blanks trimmed).
 */
struct docker_event {
    char *type;                /* Type: "container", "network", "image", ...; "" on engines older than API 1.22 */
    char *action;              /* Action (or status) before any ':' */
    char *detail;              /* text after the ':' (health state, exec command); "" when none */
    char *id;                  /* Actor.ID, else id; "" when neither */
    char *name;                /* Actor.Attributes.name (for a container: its name, new name on rename) */
    char *image;               /* Actor.Attributes.image, else from */
    char *old_name;            /* Actor.Attributes.oldName on rename, leading '/' removed; "" otherwise */
    int64_t time_nano;         /* timeNano, else time * 1e9; 0 when neither */
    bool has_exit_code;        /* Actor.Attributes.exitCode was present and numeric (die events) */
    int exit_code;             /* its value */
};

/* Parses one event object into *out (zeroed first). 0 / -EPROTO / -EMSGSIZE / -ENOMEM. */
int docker_parse_event(const char *buf, size_t len, struct docker_event *out);
/* Frees the strings and zeroes *ev. NULL-safe. */
void docker_event_free(struct docker_event *ev);

/*
 * GET /version: copies ApiVersion (required, e.g. "1.41") into api_version and
 * Version (e.g. "20.10.24+dfsg1"; "" when missing) into version, NUL-terminated.
 * Either buffer may be NULL (with any cap) to skip it. -ENOSPC when a value
 * does not fit its buffer (the buffer then holds ""), else as the other parsers.
 */
int docker_parse_version(const char *buf, size_t len, char *api_version, size_t cap, char *version,
                         size_t cap2);

/*
 * Parses a Docker/Go RFC 3339 time, "2026-11-21T23:59:27.324112494Z" or with a
 * "+hh:mm"/"-hh:mm" offset, fraction optional (up to 9 digits used, more are
 * ignored), into unix seconds. Go's zero time "0001-01-01T00:00:00Z" gives 0.
 * Pure over (s, len). 0 or -EINVAL.
 */
int docker_time_parse(const char *s, size_t len, double *out);

/*
 * The /events line splitter. The stream is a sequence of JSON objects each
 * followed by '\n'; a network read may end inside an object or hold several.
 * Complete lines found inside the fed buffer are passed to the callback
 * without copying; only a trailing partial line is copied into `buf` (at most
 * max_line bytes), to be completed by the next feed.
 *
 * Memory: `buf` is malloc'ed on the first partial line, grows up to max_line
 * and is kept until docker_stream_free() (or docker_stream_reset()).
 */
struct docker_stream {
    char *buf;                 /* pending partial line; owned; NULL until needed */
    size_t len;                /* bytes pending in buf */
    size_t cap;                /* allocated size of buf */
    size_t max_line;           /* longest accepted line, excluding the '\n' */
    bool discarding;           /* inside an oversized line: skip up to the next '\n' */
    uint64_t lines;            /* complete lines delivered so far */
    uint64_t dropped;          /* oversized lines dropped so far */
};

/*
 * One complete line, without its '\n' (and without a trailing '\r'); never
 * empty (blank lines are skipped). `line` is valid only during the call.
 * Return 0 to continue; a non-zero value stops docker_stream_feed, which
 * returns it, and the rest of that feed is discarded (the stream must then be
 * reset or freed before reuse).
 */
typedef int (*docker_line_cb)(void *arg, const char *line, size_t len);

/* Initialises an empty splitter; allocates nothing. max_line 0 means 1 MiB. */
void docker_stream_init(struct docker_stream *s, size_t max_line);
/*
 * Splits buf[0..len) into lines, calling cb once per complete line in order.
 * Returns 0; -EMSGSIZE when a line longer than max_line was seen in this feed
 * (it is dropped, the splitter resynchronises after its '\n', and the lines
 * after it in the same buffer are still delivered); -ENOMEM when a partial
 * line could not be kept (it is dropped as if oversized); or the callback's
 * non-zero return.
 */
int docker_stream_feed(struct docker_stream *s, const char *buf, size_t len, docker_line_cb cb,
                       void *arg);
/* Forgets any partial line and the discarding state; keeps buf and counters. */
void docker_stream_reset(struct docker_stream *s);
/* Frees buf; the struct may be re-initialised afterwards. */
void docker_stream_free(struct docker_stream *s);

#endif
