# Fjord: one flat Makefile. Each folder adds its sources in its own
# module.mk; everything is built into build/ (or $(BUILD) for variants).

BUILD     ?= build
PREFIX    ?= /usr/local
CC        ?= cc
SANITIZE  ?=
OPT       ?= -O2

WARN      := -Wall -Wextra -Wshadow -Wmissing-prototypes -Werror
CPPFLAGS  := -D_GNU_SOURCE -Icommon -Iproto -I$(BUILD)/gen -Istack/include -Istack
CFLAGS    := -std=gnu11 $(OPT) -g -fno-omit-frame-pointer $(WARN) $(SANITIZE)
LDFLAGS   := $(SANITIZE)

PKGS      := libcurl libmicrohttpd libconfig libprotobuf-c jansson sqlite3 libcrypto cunit libpcap
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS  += $(PKG_CFLAGS)
LDLIBS    := $(PKG_LIBS) -lpthread -lm

OBJ       := $(BUILD)/obj
# Link line for programs: every project library in one group (order-free), then the system ones.
LINK_LIBS = -Wl,--start-group $(LIBS_A) -Wl,--end-group $(LDLIBS)
# Filled in by the module.mk files.
BINS      :=
LIBS_A    :=
UNIT_SRCS :=
TEST_SCRIPTS :=
BENCH_SCRIPTS :=
FUZZ_TARGETS :=
GEN_HDRS  :=

.PHONY: all deps test unit demo demo-local bench fuzz fuzz-smoke asan check-style format install clean

all: $(BUILD)/.stamp-all

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

include common/module.mk
include proto/module.mk
include stack/module.mk
include controller/module.mk
include agent/module.mk
include deploy/testbed/module.mk
include tests/module.mk

$(BUILD)/.stamp-all: $(BINS) $(BUILD)/fjord-unit
	@touch $@


$(OBJ)/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(OBJ)/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(filter-out -Wmissing-prototypes,$(CFLAGS)) -MMD -MP -c $< -o $@

deps:
	@sh deploy/deps.sh

# make test: install what is missing, build, then every test: CUnit suites,
# the fuzz smoke pass and the integration scripts.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit fuzz-smoke
	@sh tests/run-scripts.sh $(TEST_SCRIPTS)

unit: $(BUILD)/fjord-unit
	$(BUILD)/fjord-unit

# The unit tests that run the programs (e.g. api_config/exit_code) use the normal build's.
asan: deps all
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
		SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		build/asan/fjord-unit
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build/asan/fjord-unit

# make demo: the main job on the emulated NorNet-style testbed (root).
# make demo-local: the control plane alone on 127.0.0.1 (no root needed).
demo: deps
	@$(MAKE) --no-print-directory all
	@sh tests/e2e/demo_testbed.sh

demo-local: deps
	@$(MAKE) --no-print-directory all
	@sh tests/e2e/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@for b in $(BENCH_SCRIPTS); do echo "== $$b"; sh $$b || exit 1; done

FUZZ_SECONDS ?= 60
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@for t in $(FUZZ_TARGETS); do echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
		mkdir -p $(BUILD)/fuzz/corpus-$$t; \
		$(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus-$$t \
			tests/fuzz/corpus/$$t 2>&1 | tail -n 3 || exit 1; done

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/smoke-$$t; \
		$(BUILD)/fuzz/$$t -runs=20000 $(BUILD)/fuzz/smoke-$$t tests/fuzz/corpus/$$t \
			>$(BUILD)/fuzz/$$t.log 2>&1 \
		|| { tail -n 30 $(BUILD)/fuzz/$$t.log; exit 1; }; \
		echo "fuzz smoke: $$t: $$(grep -o 'Done [0-9]* runs' $(BUILD)/fuzz/$$t.log)"; done

STYLE_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
check-style:
	@clang-format --dry-run --Werror $(STYLE_SRCS) && echo "check-style: $(words $(STYLE_SRCS)) files clean"

format:
	@clang-format -i $(STYLE_SRCS)

# Programs into bin/; the commented sample configs and the testbed topologies
# into share/fjord/. A missing file fails the install rather than being skipped.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/fjord/testbed
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 deploy/*.cfg $(DESTDIR)$(PREFIX)/share/fjord/
	install -m 644 deploy/testbed/*.cfg $(DESTDIR)$(PREFIX)/share/fjord/testbed/

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
