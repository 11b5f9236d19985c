# relay: one non-recursive GNU Makefile. Objects go under build/$(VARIANT)/.
# `make` builds build/release/relay; `make help` lists the targets.

VARIANT ?= release
B       := build/$(VARIANT)

CORE_PKGS := libwebsockets libjwt jansson openssl sqlite3 libuv
AV_PKGS   := libavcodec libavformat libavutil libswscale
# libavdevice: headers only; host/video.c loads the library when a camera is opened (dlopen)
AV_CFLAGS_EXTRA := libavdevice

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
           -Wwrite-strings -Wformat=2 -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -I. -D_GNU_SOURCE
CORE_CFLAGS = $(shell pkg-config --cflags $(CORE_PKGS) 2>/dev/null)
CORE_LIBS   = $(shell pkg-config --libs $(CORE_PKGS) 2>/dev/null)
AV_CFLAGS   = $(shell pkg-config --cflags $(AV_PKGS) $(AV_CFLAGS_EXTRA) 2>/dev/null)
AV_LIBS     = $(shell pkg-config --libs $(AV_PKGS) 2>/dev/null)
LDLIBS  += $(CORE_LIBS) -lpthread -lm -ldl

ifeq ($(VARIANT),asan)
CFLAGS  += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

PKG_SRC  := $(wildcard pkg/*/*.c)
# Code that needs libav (the host's video): compiled with libav's flags; unit tests of the rest
# stay libav-free so valgrind can run them (it cannot run a binary linked with libavcodec).
AV_SRC   := host/video.c
APP_SRC  := $(filter-out $(AV_SRC),$(wildcard cmd/*.c relay/*.c token/*.c file/*.c host/*.c))
O        := $(B)/obj
PKG_OBJ  := $(PKG_SRC:%.c=$(O)/%.o)
APP_OBJ  := $(APP_SRC:%.c=$(O)/%.o)
AV_OBJ   := $(AV_SRC:%.c=$(O)/%.o)
UNITS    := $(patsubst test/unit/%_test.c,$(B)/test/%_test,$(wildcard test/unit/*_test.c))
FUZZERS  := $(patsubst test/fuzz/fuzz_%.c,%,$(wildcard test/fuzz/fuzz_*.c))
FMT_SRC  := $(wildcard cmd/*.[ch] relay/*.[ch] token/*.[ch] file/*.[ch] host/*.[ch] pkg/*/*.[ch] \
              test/unit/*.[ch] test/fuzz/*.[ch] test/*.h)

RELAY    := $(B)/relay

all: $(RELAY)

$(RELAY): $(APP_OBJ) $(AV_OBJ) $(PKG_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(AV_LIBS)

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CORE_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/test/%_test: $(O)/test/unit/%_test.o $(PKG_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(AV_OBJ): CORE_CFLAGS += $(AV_CFLAGS)

$(B)/test/video_test: $(O)/test/unit/video_test.o $(AV_OBJ) $(PKG_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(AV_LIBS)

deps:
	@scripts/deps.sh

# Unit binaries, then the end-to-end suite against the real binary.
# The fuzz smoke run goes first so that the last line is the summed "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory format-check >/dev/null && echo "format-check: clean"
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-5}
	@$(MAKE) --no-print-directory test-only

test-only: $(RELAY) $(UNITS)
	@scripts/run-tests.sh $(B) $(UNITS)

check: deps
	@$(MAKE) --no-print-directory VARIANT=asan test-only

run: deps
	@$(MAKE) --no-print-directory $(RELAY)
	@scripts/run-dev.sh $(RELAY)

bench: deps
	@$(MAKE) --no-print-directory $(RELAY)
	@bench/run.sh $(RELAY)

fuzz:
	@mkdir -p build/fuzz
	@for f in $(FUZZERS); do \
	  clang -std=gnu11 -g -O1 -I. -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	    -o build/fuzz/$$f test/fuzz/fuzz_$$f.c $(PKG_SRC) $(CORE_CFLAGS) $(CORE_LIBS) -lm || exit 1; \
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

docs: $(RELAY)
	@scripts/gen-docs.sh $(RELAY) > docs/configuration.md

clean:
	rm -rf build

help:
	@echo "make              build $(RELAY)"
	@echo "make run          install deps, build, start relay serve on localhost with dev defaults"
	@echo "make test         install deps, build, run unit and end-to-end tests"
	@echo "make check        the same tests in an ASan+UBSan build"
	@echo "make bench        benchmarks (figures, not pass/fail)"
	@echo "make fuzz         run each fuzzer for FUZZ_SECONDS (default 60; make test runs 5 s each)"
	@echo "make docs         regenerate docs/configuration.md from the settings tables"
	@echo "make format       clang-format the sources; format-check only checks"
	@echo "make clean        remove build/"

.PHONY: all deps test test-only check run bench fuzz docs format format-check clean help
-include $(PKG_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(AV_OBJ:.o=.d) $(wildcard $(O)/test/unit/*.d)
.SECONDARY:
