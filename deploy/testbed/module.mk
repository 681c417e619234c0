# deploy/testbed: the emulated NorNet-style testbed.
# libfjtestbed.a: topology parser, address plan and the link model (unit-tested).
TESTBED_LIB_SRCS := deploy/testbed/tb_config.c deploy/testbed/tb_emu.c
LIBS_A += $(BUILD)/libfjtestbed.a

$(BUILD)/libfjtestbed.a: $(call objs,$(TESTBED_LIB_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# fjord-testbed (up/down/status/set) and fjord-linkemu (the NFQUEUE link emulator).
BINS += $(BUILD)/fjord-testbed $(BUILD)/fjord-linkemu

$(BUILD)/fjord-testbed: $(call objs,deploy/testbed/testbed.c) $(BUILD)/libfjtestbed.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fjord-linkemu: $(call objs,deploy/testbed/linkemu.c) $(BUILD)/libfjtestbed.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Test helper (not installed): one kernel MPTCP connection, reports fallback.
$(BUILD)/fjtb-mptcp-probe: $(call objs,tests/testbed/mptcp_probe.c)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/.stamp-all: $(BUILD)/fjtb-mptcp-probe

TEST_SCRIPTS += tests/testbed/updown.sh tests/testbed/links.sh tests/testbed/middlebox.sh \
	tests/testbed/mbox_payload.sh \
	tests/testbed/shipped.sh
BENCH_SCRIPTS += tests/bench/testbed_emu.sh

# Fuzz target for the topology parser (tests/fuzz/fuzz_tb_config.c).
FUZZ_TARGETS += fuzz_tb_config
FUZZ_SRCS_fuzz_tb_config := deploy/testbed/tb_config.c
$(BUILD)/fuzz/fuzz_tb_config: $(FUZZ_SRCS_fuzz_tb_config) deploy/testbed/tb_config.h
TEST_SCRIPTS += tests/e2e/testbed_exp.sh
BENCH_SCRIPTS += tests/bench/testbed_goodput.sh
# Kernel interop of MP_FAIL and the infinite mapping through the rewrite-payload
# middlebox (fjord-linkemu --payload-queue); a stack test that needs our emulator.
TEST_SCRIPTS += tests/interop/kernel_mpfail.sh

# Fuzz target for the payload-rewriting middlebox (tests/fuzz/fuzz_tb_payload.c).
FUZZ_TARGETS += fuzz_tb_payload
FUZZ_SRCS_fuzz_tb_payload := deploy/testbed/tb_emu.c
$(BUILD)/fuzz/fuzz_tb_payload: $(FUZZ_SRCS_fuzz_tb_payload) deploy/testbed/tb_emu.h \
	deploy/testbed/tb_config.h
