# Unit and simulation tests: one CUnit binary, one suite per module, all
# listed in tests/unit/suites.def.
UNIT_SRCS += tests/unit/runner.c $(wildcard tests/unit/test_*.c) $(wildcard tests/sim/test_*.c)

$(BUILD)/fjord-unit: $(call objs,$(UNIT_SRCS)) $(LIBS_A)
	$(CC) $(LDFLAGS) -o $@ $(call objs,$(UNIT_SRCS)) $(LINK_LIBS)

$(OBJ)/tests/unit/runner.o: tests/unit/suites.def

# Fuzz targets: tests/fuzz/fuzz_NAME.c, built with clang and libFuzzer
# against the sources listed in FUZZ_SRCS_NAME.
FUZZ_CC ?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Icommon -Iproto \
	-I$(BUILD)/gen -Istack/include -Istack $(PKG_CFLAGS)
.PHONY: fuzz-build
fuzz-build: $(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/$(t))

.SECONDEXPANSION:
$(BUILD)/fuzz/%: tests/fuzz/%.c $$(FUZZ_SRCS_$$*) $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRCS_$*) $(LDLIBS)
