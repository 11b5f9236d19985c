/*
 * log: leveled log lines, as text or JSON, to stderr or a file.
 * Each line carries time, level, module, an optional connection tag and the message.
 * A file is reopened (for logrotate) on the next line after log_request_reopen(),
 * which is async-signal-safe so a SIGHUP handler may call it. Thread-safe.
 * Never pass tokens, keys or passwords: log `sub`/`jti` or a short hash.
 */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/*
 * Current level; read by the macros so that disabled lines cost one comparison. Atomic: the
 * host's stream and encoder threads read it while the main thread may set it (log_init).
 * Relaxed loads are enough: nothing else is published through it.
 */
extern atomic_int log__level;

/*
 * Configure the sink. @level: "error" "warn" "notice" "info" "debug"; @format: "text" or
 * "json"; @path: NULL or "-" for stderr, else a file opened for appending.
 * Returns 0, or -EINVAL for a bad level/format, or -errno when the file cannot be opened
 * (the previous sink stays). Call from the main thread before other threads start.
 */
int log_init(const char *level, const char *format, const char *path);

/* Parse a level name; -EINVAL when unknown. */
int log_level_parse(const char *name);

/* Ask for the log file to be reopened before the next line. Async-signal-safe. */
void log_request_reopen(void);

/* Close the file sink (if any) and return to stderr. */
void log_close(void);

void log__emit(enum log_level level, const char *module, const char *tag, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#ifndef LOG_MODULE
#define LOG_MODULE "relay"
#endif

#define log__at(lvl, tag, ...)                                                        \
	do {                                                                          \
		if (atomic_load_explicit(&log__level, memory_order_relaxed) >= (lvl)) \
			log__emit((lvl), LOG_MODULE, (tag), __VA_ARGS__);             \
	} while (0)

#define log_err(...)    log__at(LOG_LEVEL_ERR, NULL, __VA_ARGS__)
#define log_warn(...)   log__at(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_notice(...) log__at(LOG_LEVEL_NOTICE, NULL, __VA_ARGS__)
#define log_info(...)   log__at(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_debug(...)  log__at(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)

/* The same with a connection tag (e.g. "c42"), shown as its own field. */
#define logt_err(tag, ...)    log__at(LOG_LEVEL_ERR, (tag), __VA_ARGS__)
#define logt_warn(tag, ...)   log__at(LOG_LEVEL_WARN, (tag), __VA_ARGS__)
#define logt_notice(tag, ...) log__at(LOG_LEVEL_NOTICE, (tag), __VA_ARGS__)
#define logt_info(tag, ...)   log__at(LOG_LEVEL_INFO, (tag), __VA_ARGS__)
#define logt_debug(tag, ...)  log__at(LOG_LEVEL_DEBUG, (tag), __VA_ARGS__)

#endif
