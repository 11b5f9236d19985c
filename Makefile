# relay: one non-recursive GNU Makefile. Objects go under build/$(VARIANT)/.
# `make` builds build/release/relay; `make help` lists the targets.
#
# Flags follow git's pattern: what the build needs (include path, defines, warnings, hardening,
# the variant's sanitizers) is in BASIC_CFLAGS and always used; CFLAGS, CPPFLAGS and LDFLAGS are
# the user's or packager's (`make CFLAGS='-O2 -g -march=native'` keeps everything else).
# DEVELOPER=1 (set by make test, test-only and check, and by .ci/run) turns warnings into errors;
# a user's plain `make` on a newer compiler only warns.

VARIANT ?= release
B       := build/$(VARIANT)

CORE_PKGS := libwebsockets libjwt jansson openssl sqlite3 libuv hiredis
AV_PKGS   := libavcodec libavformat libavutil libswscale
# libavdevice: headers only; host/video.c loads the library when a camera is opened (dlopen)
AV_CFLAGS_EXTRA := libavdevice

# Goals that must work on a machine without the libraries: they install them, remove build/,
# print help, format, or only call $(MAKE) again after `deps`.
NO_LIB_GOALS := deps clean help format format-check test check run bench
ifneq ($(filter-out $(NO_LIB_GOALS),$(or $(MAKECMDGOALS),all)),)
PKG_MISSING := $(shell for p in $(CORE_PKGS) $(AV_PKGS) $(AV_CFLAGS_EXTRA); do \
                 pkg-config --exists $$p || printf '%s ' $$p; done)
ifneq ($(PKG_MISSING),)
$(error pkg-config cannot find: $(PKG_MISSING)- run `make deps` (Debian/Ubuntu, as root) or install their -dev packages)
endif
# := so that pkg-config runs once per make, not once per object
CORE_CFLAGS := $(shell pkg-config --cflags $(CORE_PKGS))
CORE_LIBS   := $(shell pkg-config --libs $(CORE_PKGS))
AV_CFLAGS   := $(shell pkg-config --cflags $(AV_PKGS) $(AV_CFLAGS_EXTRA))
AV_LIBS     := $(shell pkg-config --libs $(AV_PKGS))
endif

ifneq ($(filter test test-only check,$(MAKECMDGOALS)),)
DEVELOPER ?= 1
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
        -Wwrite-strings -Wformat=2
CFLAGS ?= -O2 -g
BASIC_CFLAGS  := -std=gnu11 -I. -D_GNU_SOURCE $(WARN)
BASIC_LDFLAGS :=
LDLIBS += $(CORE_LIBS) -lpthread -lm -ldl

# A network daemon: position-independent (ASLR), read-only relocations resolved at start-up,
# stack canaries and glibc's checked string functions. The sanitizer variants keep PIE and
# RELRO but not the last two: the sanitizers check the stack and those calls themselves, and
# fortified calls would bypass ASan's interceptors.
BASIC_CFLAGS  += -fPIE
BASIC_LDFLAGS += -pie -Wl,-z,relro,-z,now
ifeq ($(VARIANT),release)
BASIC_CFLAGS += -fstack-protector-strong
# _FORTIFY_SOURCE needs optimisation, and a packager's own setting (=3) wins
ifeq ($(findstring _FORTIFY_SOURCE,$(CPPFLAGS) $(CFLAGS)),)
ifneq ($(filter -O1 -O2 -O3 -Os -Og -Ofast,$(CFLAGS)),)
BASIC_CFLAGS += -D_FORTIFY_SOURCE=2
endif
endif
else ifeq ($(VARIANT),asan)
BASIC_CFLAGS  += -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer
BASIC_LDFLAGS += -fsanitize=address,undefined
else ifeq ($(VARIANT),tsan)
BASIC_CFLAGS  += -O1 -g -fsanitize=thread
BASIC_LDFLAGS += -fsanitize=thread
else
$(error unknown VARIANT '$(VARIANT)': release, asan or tsan)
endif

ifeq ($(DEVELOPER),1)
DEVELOPER_CFLAGS := -Werror
endif

ALL_CFLAGS  = $(CPPFLAGS) $(CFLAGS) $(BASIC_CFLAGS) $(DEVELOPER_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) $(BASIC_LDFLAGS)

PKG_SRC  := $(wildcard pkg/*/*.c)
# Code that needs libav (the host's video): compiled with libav's flags, linked only into the
# plugin relay-video.so and video_test. relay itself and the other unit tests link no libav, so
# valgrind can run them. It cannot run a binary linked with libavcodec (SIGILL loading a codec
# dependency), so the video path (video_test, relay host once it loads the plugin) is ASan's.
AV_SRC   := host/video.c
# relay links no libav: host/video.c is the plugin relay-video.so beside it, which
# host/video_load.c loads when relay host first opens an encoder (host/video_plugin.h).
# Its objects are position-independent, with one visible symbol (the table in video_plugin.c).
PLUGIN_SRC := $(AV_SRC) host/video_plugin.c host/video_pattern.c pkg/buf/buf.c
APP_SRC  := $(filter-out $(AV_SRC) host/video_plugin.c, \
              $(wildcard cmd/*.c relay/*.c token/*.c file/*.c host/*.c))
O        := $(B)/obj
PKG_OBJ  := $(PKG_SRC:%.c=$(O)/%.o)
APP_OBJ  := $(APP_SRC:%.c=$(O)/%.o)
AV_OBJ   := $(AV_SRC:%.c=$(O)/%.o)
PLUGIN_OBJ := $(PLUGIN_SRC:%.c=$(O)/plugin/%.o)
UNITS    := $(patsubst test/unit/%_test.c,$(B)/test/%_test,$(wildcard test/unit/*_test.c))
FUZZERS  := $(patsubst test/fuzz/fuzz_%.c,%,$(wildcard test/fuzz/fuzz_*.c))
FMT_SRC  := $(wildcard cmd/*.[ch] relay/*.[ch] token/*.[ch] file/*.[ch] host/*.[ch] pkg/*/*.[ch] \
              test/unit/*.[ch] test/fuzz/*.[ch] test/*.h test/*.c)

RELAY    := $(B)/relay
PLUGIN   := $(B)/relay-video.so

# make install: relay in $(BINDIR), the plugin in $(PLUGINDIR), which relay also searches (after
# its own directory); DESTDIR stages a package's tree.
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
PLUGINDIR ?= $(PREFIX)/lib/relay

# The sanitizer variants write their reports under $(B)/san/ (test/sanitizer.c), where
# scripts/run-tests.sh looks: the tests start relay with an empty environment.
ifneq ($(VARIANT),release)
SAN_OBJ := $(O)/test/sanitizer.o
$(SAN_OBJ): BASIC_CFLAGS += -DSAN_LOG_PATH='"$(abspath $(B))/san/report"'
endif

all: $(RELAY)

# Every object depends on the flags it was built with (git's GIT-CFLAGS): changing CFLAGS or
# VARIANT's flags rebuilds. -Werror is left out: it does not change the code.
FLAGS_FILE := $(B)/.flags
FLAGS_NOW   = $(CC) $(CPPFLAGS) $(CFLAGS) $(BASIC_CFLAGS) $(CORE_CFLAGS) | $(LDFLAGS) $(BASIC_LDFLAGS)
$(FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' >$@

# relay is not usable for video without its plugin: building one builds the other.
$(RELAY): $(APP_OBJ) $(PKG_OBJ) $(SAN_OBJ) | $(PLUGIN)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# The variant's sanitizer flags too: an instrumented relay loads an instrumented plugin.
# -z defs: every symbol the plugin needs is in the libraries it names, none expected of relay.
$(PLUGIN): $(PLUGIN_OBJ)
	$(CC) $(filter-out -pie,$(ALL_LDFLAGS)) -shared -Wl,-z,defs -o $@ $^ $(AV_LIBS) -lpthread -ldl

$(O)/plugin/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden $(CORE_CFLAGS) $(AV_CFLAGS) -MMD -MP -c -o $@ $<

# Where relay looks for the plugin after its own directory; a change of PLUGINDIR rebuilds it.
PLUGINDIR_FILE := $(B)/.plugindir
$(PLUGINDIR_FILE): FORCE
	@mkdir -p $(@D)
	@echo '$(PLUGINDIR)' | cmp -s - $@ || echo '$(PLUGINDIR)' >$@
$(O)/host/video_load.o: $(PLUGINDIR_FILE)
$(O)/host/video_load.o: private BASIC_CFLAGS += -DRELAY_PLUGIN_DIR='"$(PLUGINDIR)"'

$(O)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CORE_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/test/%_test: $(O)/test/unit/%_test.o $(PKG_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(AV_OBJ): CORE_CFLAGS += $(AV_CFLAGS)

# The same program with a clock that tests can move forward (pkg/clock/clock.c,
# RELAY_TEST_CLOCK_FILE), for expiry tests; only build/VARIANT/relay is ever installed.
TEST_RELAY := $(B)/test/relay
$(O)/pkg/clock/clock-test.o: pkg/clock/clock.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DRELAY_TEST_CLOCK -MMD -MP -c -o $@ $<

$(TEST_RELAY): $(APP_OBJ) $(filter-out %/clock.o,$(PKG_OBJ)) $(O)/pkg/clock/clock-test.o \
               $(SAN_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/test/video_test: $(O)/test/unit/video_test.o $(AV_OBJ) $(O)/host/video_pattern.o $(PKG_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(AV_LIBS)

deps:
	@scripts/deps.sh

# Unit binaries, then the end-to-end suite against the real binary.
# The fuzz smoke run goes first so that the last line is the summed "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory format-check >/dev/null && echo "format-check: clean"
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-5}
	@$(MAKE) --no-print-directory DEVELOPER=$(or $(DEVELOPER),1) test-only

test-only: $(RELAY) $(PLUGIN) $(TEST_RELAY) $(UNITS)
	@scripts/run-tests.sh $(B) $(UNITS)

# Every test on ASan+UBSan; then the threaded parts (relay host, relay file: t4*, t5*; relay
# serve's TURN thread: t20*, some of them on the test-clock build build/tsan/test/relay) on TSan.
# The unit tests that start threads (the store read from the TURN thread, the TURN thread
# itself, the websocket client's), run under TSan by make check beside the threaded e2e tests.
TSAN_UNITS := store relay_turn_thread wsclient

check: deps
	@$(MAKE) --no-print-directory VARIANT=asan DEVELOPER=$(or $(DEVELOPER),1) test-only
	@$(MAKE) --no-print-directory VARIANT=tsan DEVELOPER=$(or $(DEVELOPER),1) build/tsan/relay \
	  build/tsan/test/relay $(TSAN_UNITS:%=build/tsan/test/%_test)
	@E2E_ONLY='t4 t5 t20' scripts/run-tests.sh build/tsan $(TSAN_UNITS:%=build/tsan/test/%_test)

run: deps
	@$(MAKE) --no-print-directory $(RELAY)
	@scripts/run-dev.sh $(RELAY)

bench: deps
	@$(MAKE) --no-print-directory $(RELAY)
	@bench/run.sh $(RELAY)
	@bench/cluster.sh $(RELAY)
	@bench/connect.sh $(RELAY)

# Each fuzzer is rebuilt only when its source or pkg/ changed; then each runs FUZZ_SECONDS.
FUZZ_BIN := $(FUZZERS:%=build/fuzz/%)
build/fuzz/%: test/fuzz/fuzz_%.c $(PKG_SRC) $(wildcard pkg/*/*.h)
	@mkdir -p $(@D)
	clang -std=gnu11 -g -O1 -I. -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -o $@ $< $(PKG_SRC) $(CORE_CFLAGS) $(CORE_LIBS) -lm

fuzz: $(FUZZ_BIN)
	@for f in $(FUZZERS); do \
	  mkdir -p build/fuzz/corpus/$$f; \
	  if build/fuzz/$$f -max_total_time=$${FUZZ_SECONDS:-60} -artifact_prefix=build/fuzz/$$f- \
	       build/fuzz/corpus/$$f test/fuzz/corpus/$$f >build/fuzz/$$f.log 2>&1; then \
	    echo "fuzz $$f: $$(grep -o 'Done [0-9]* runs' build/fuzz/$$f.log), no failure"; \
	  else \
	    tail -30 build/fuzz/$$f.log; echo "fuzz $$f: FAILED (build/fuzz/$$f.log)"; exit 1; \
	  fi; done

format:
	clang-format -i $(FMT_SRC)

format-check:
	clang-format --dry-run -Werror $(FMT_SRC)

install: $(RELAY) $(PLUGIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PLUGINDIR)
	install -m 755 $(RELAY) $(DESTDIR)$(BINDIR)/relay
	install -m 644 $(PLUGIN) $(DESTDIR)$(PLUGINDIR)/relay-video.so

docs: $(RELAY)
	@scripts/gen-docs.sh $(RELAY) > docs/configuration.md

clean:
	rm -rf build

help:
	@echo "make              build build/release/relay (VARIANT=asan or tsan: build/VARIANT/relay)"
	@echo "make run          install deps, build, start relay serve on localhost with dev defaults"
	@echo "make test         install deps, build, run unit and end-to-end tests (DEVELOPER=1)"
	@echo "make test-only    build and run unit and end-to-end tests, no deps/format/fuzz"
	@echo "make check        all tests on ASan+UBSan, then host and file e2e tests on TSan"
	@echo "make bench        benchmarks (figures, not pass/fail)"
	@echo "make fuzz         run each fuzzer for FUZZ_SECONDS (default 60; make test runs 5 s each)"
	@echo "make install      install relay and its video plugin (PREFIX=/usr/local, DESTDIR=)"
	@echo "make docs         regenerate docs/configuration.md from the settings tables"
	@echo "make format       clang-format the sources; format-check only checks"
	@echo "make clean        remove build/"
	@echo "CFLAGS=, CPPFLAGS=, LDFLAGS= add to the build's own flags; DEVELOPER=1: -Werror"

.PHONY: all deps test test-only check run bench fuzz install docs format format-check clean help \
        FORCE
-include $(PKG_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(AV_OBJ:.o=.d) $(PLUGIN_OBJ:.o=.d) \
         $(wildcard $(O)/test/unit/*.d) \
         $(O)/pkg/clock/clock-test.d
.SECONDARY:
