# TRC build. `make` builds build/trc and build/trcd, `make test` runs every test,
# `make asan` runs the unit and CLI tests under AddressSanitizer + UBSan, `make bench` measures.
# Sources are found by wildcard: adding a file needs no edit here.

BUILD   ?= build
OPT     ?= -O2
SAN     ?=
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
BLASINC := $(shell pkg-config --cflags-only-I openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)

CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -fPIC -Wall -Wextra -Werror -Wshadow \
           -Wstrict-prototypes -Wmissing-prototypes -Wvla -MMD -MP \
           -Icore/include -Icore/src -Iproto $(BLASINC)
LDLIBS  += -lopenblas -ljansson -lzip -lm -lpthread
SRV_LIBS = -lmicrohttpd -luv -lsqlite3
ifneq ($(SAN),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif
# libFuzzer builds (make fuzz, with clang): every layer gets coverage instrumentation.
ifneq ($(FUZZ),)
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=all
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

CORE_SRC  := $(wildcard core/src/*/*.c)
PROTO_SRC := $(wildcard proto/*.c)
SRV_SRC   := $(filter-out server/main.c,$(wildcard server/*.c))
CLI_SRC   := $(wildcard clients/trc/*.c)
# Unit tests: tests/unit/<layer>/test_*.c, each its own cmocka binary linked with its layer
# and those below it (core < proto < server), so a layer's tests never wait on a layer above.
CORE_TESTS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/core/test_*.c))
PROTO_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/proto/test_*.c))
SERVER_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/server/test_*.c))
TESTS        := $(CORE_TESTS) $(PROTO_TESTS) $(SERVER_TESTS)
BENCHES      := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/bench_*.c))
# Fuzz harnesses: every tests/fuzz/fuzz_*.c is one libFuzzer binary, linked with all three layers
# (a static archive contributes only the objects the harness reaches).
FUZZERS      := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 2
FUZZ_CC      ?= clang
SOAK_SECONDS ?= 600
obj        = $(1:%.c=$(BUILD)/obj/%.o)

.PHONY: workflow all deps ensure-deps ensure-build-deps valgrind test unit-test cli-test integration-test browser-test asan bench run clean format lint fuzz fuzz-build openapi-lint soak container-test install openapi
all: $(BUILD)/trc $(BUILD)/trcd

deps:
	sh scripts/install-deps.sh

ensure-deps:
	@sh scripts/install-deps.sh --if-missing
ensure-build-deps:
	@sh scripts/install-deps.sh --if-missing --build

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libtrc.a: $(call obj,$(CORE_SRC))
	$(AR) rcs $@ $^
$(BUILD)/libtrc.so.1: $(call obj,$(CORE_SRC))
	$(CC) -shared -Wl,-soname,libtrc.so.1 $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/libtrcproto.a: $(call obj,$(PROTO_SRC))
	$(AR) rcs $@ $^
$(BUILD)/libtrcd.a: $(call obj,$(SRV_SRC))
	$(AR) rcs $@ $^

$(BUILD)/trc: $(call obj,$(CLI_SRC)) $(BUILD)/libtrcproto.a $(BUILD)/libtrc.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/trcd: $(call obj,server/main.c) $(BUILD)/libtrcd.a $(BUILD)/libtrcproto.a $(BUILD)/libtrc.a
	$(CC) $(LDFLAGS) $^ $(SRV_LIBS) $(LDLIBS) -o $@
$(BUILD)/tests/core/%: $(call obj,tests/unit/core/%.c) $(BUILD)/libtrc.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -lcmocka $(LDLIBS) -o $@
$(BUILD)/tests/proto/%: $(call obj,tests/unit/proto/%.c) $(BUILD)/libtrcproto.a $(BUILD)/libtrc.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -lcmocka $(LDLIBS) -o $@
$(BUILD)/tests/server/%: $(call obj,tests/unit/server/%.c) $(BUILD)/libtrcd.a $(BUILD)/libtrcproto.a $(BUILD)/libtrc.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -lcmocka $(SRV_LIBS) $(LDLIBS) -o $@

$(BUILD)/bench/%: $(call obj,tests/bench/%.c) $(BUILD)/libtrc.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/fuzz/%: $(call obj,tests/fuzz/%.c) $(BUILD)/libtrcd.a $(BUILD)/libtrcproto.a $(BUILD)/libtrc.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(SRV_LIBS) $(LDLIBS) -o $@

test: ensure-deps
	$(MAKE) all $(TESTS)
	$(MAKE) unit-test cli-test integration-test browser-test

unit-test: $(TESTS)
	@sh tests/run-unit.sh $(TESTS)
# The original's whole workflow (scripts/workflow.sh): make workflow WORKFLOW_ARGS="--system van_der_pol"
workflow: $(BUILD)/trc
	TRC_BIN=$(BUILD)/trc sh scripts/workflow.sh $(WORKFLOW_ARGS)
cli-test: $(BUILD)/trc
	@TRC_BIN=$(BUILD)/trc sh tests/cli/run.sh
integration-test: $(BUILD)/trc $(BUILD)/trcd
	@if [ -d tests/integration ]; then TRC_BIN=$(BUILD)/trc TRCD_BIN=$(BUILD)/trcd \
	    $(PYTHON) -m pytest -q tests/integration; fi
browser-test: $(BUILD)/trcd
	@if [ -f tests/browser/run.sh ]; then TRCD_BIN=$(BUILD)/trcd sh tests/browser/run.sh; fi

asan: ensure-deps
	$(MAKE) BUILD=build/asan SAN=1 OPT=-O1 all
	$(MAKE) BUILD=build/asan SAN=1 OPT=-O1 unit-test cli-test integration-test

# Every unit test under valgrind: no invalid access, no definite or indirect leak.
valgrind: ensure-deps
	$(MAKE) $(TESTS)
	@TRC_TEST_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect" \
	    OPENBLAS_NUM_THREADS=1 TRC_TEST_JOBS=$$(nproc) sh tests/run-unit.sh $(TESTS)

# Each harness for FUZZ_SECONDS (default 60) from its seeds in tests/fuzz/corpus/<harness>/,
# FUZZ_JOBS at a time; a crash, leak or timeout fails with the reproducer's path (tests/fuzz/README.md).
fuzz: ensure-deps
	$(MAKE) BUILD=build/fuzz CC=$(FUZZ_CC) FUZZ=1 OPT=-O1 fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) sh tests/fuzz/run.sh build/fuzz/fuzz \
	    $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz-build: $(FUZZERS)

# A real trcd under 16 connections of good and bad requests, jobs and hot swaps for SOAK_SECONDS
# (default 10 min; not in CI): zero 5xx and RSS flat within 10% (tests/soak/soak.py).
soak: ensure-deps
	$(MAKE) all
	$(PYTHON) tests/soak/soak.py --trcd $(BUILD)/trcd --seconds $(SOAK_SECONDS)

bench: ensure-deps
	$(MAKE) all $(BENCHES)
	sh tests/bench/run.sh $(BUILD)

# `make install PREFIX=/usr DESTDIR=/tmp/pkg`: binaries, libtrc (static, shared), headers, trc.pc,
# dashboard, docs, trcd.service (scripts/install.sh says where each goes).
install: all $(BUILD)/libtrc.so.1
	sh scripts/install.sh "$(BUILD)" "$(DESTDIR)" "$(PREFIX)"

# Builds the image with podman (base image from Debian packages) and runs it as a platform would.
container-test:
	bash tests/container/run.sh

run: ensure-build-deps
	$(MAKE) all
	sh scripts/run.sh $(BUILD)

C_FILES = $(wildcard core/include/trc/*.h core/src/*/*.[ch] proto/*.[ch] server/*.[ch] clients/trc/*.[ch] \
            tests/unit/*.h tests/unit/*/*.[ch] tests/bench/*.c tests/fuzz/*.c examples/*.c)
format:
	clang-format -i $(C_FILES)
lint:
	clang-format --dry-run -Werror $(C_FILES)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
	    --suppress=missingIncludeSystem -Icore/include -Icore/src -Iproto core/src proto server clients/trc examples

# proto/openapi.yaml against Redocly's recommended rules (installs @redocly/cli from npm once).
openapi-lint:
	bash tests/openapi/lint.sh

# The TrainSpec schema of proto/openapi.yaml comes from core's option tables.
openapi: $(BUILD)/trc
	$(PYTHON) scripts/openapi_trainspec.py $(BUILD)/trc proto/openapi.yaml

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
