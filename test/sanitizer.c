/*
 * sanitizer: linked into the asan and tsan variants only (Makefile). The sanitizers' reports go
 * to files under SAN_LOG_PATH (build/VARIANT/san/) instead of stderr, because the end-to-end
 * tests start relay with an empty environment and read its stderr as a log;
 * scripts/run-tests.sh fails the run when a report is there. *SAN_OPTIONS still override.
 */
#ifndef SAN_LOG_PATH
#error "SAN_LOG_PATH: build this file through the Makefile"
#endif

const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__tsan_default_options(void);

const char *__asan_default_options(void)
{
	return "log_path=" SAN_LOG_PATH;
}

const char *__ubsan_default_options(void)
{
	return "log_path=" SAN_LOG_PATH " print_stacktrace=1";
}

/* second_deadlock_stack: both stacks of a lock-order inversion, not only one */
const char *__tsan_default_options(void)
{
	return "log_path=" SAN_LOG_PATH " second_deadlock_stack=1";
}
