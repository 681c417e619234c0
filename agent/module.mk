# agent/: fjord-agent. Everything except main.c forms libfjagent.a, which
# the unit tests link too.
AGENT_SRCS := agent/agent_loop.c agent/agent_loop_epoll.c agent/agent_backoff.c \
	agent/agent_config.c agent/agent_spool.c agent/agent_arena.c agent/agent_sysinfo.c \
	agent/agent_http.c agent/responder.c agent/exp.c agent/exp_echo.c agent/exp_sock.c agent/exp_bulk.c agent/exp_link.c agent/exp_rr.c agent/exp_probe.c agent/exp_pcap.c agent/sampler.c agent/mptcp_info.c \
	agent/bundled.c agent/bundled_resp.c agent/exp_bundled.c \
	agent/agent_runner.c agent/agent_ctl.c agent/agent_upload.c agent/agent.c
AGENT_SRCS += agent/exp_tracebox.c
AGENT_SRCS += agent/exp_probe_bundled.c
AGENT_SRCS += agent/bundled_host.c
AGENT_MAIN := agent/main.c
CPPFLAGS += -Iagent

LIBS_A := $(BUILD)/libfjagent.a $(LIBS_A)
BINS += $(BUILD)/fjord-agent

$(BUILD)/libfjagent.a: $(call objs,$(AGENT_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/fjord-agent: $(call objs,$(AGENT_MAIN)) $(BUILD)/libfjagent.a $(BUILD)/libfjproto.a \
		$(BUILD)/libfjcommon.a $(BUILD)/libmps.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The fake controller of the agent's tests: linked into the unit binary, and
# as a program for tests/agent/spool_kill.sh.
UNIT_SRCS += tests/agent/fake_ctl.c
FAKE_CTL_SRCS := tests/agent/fake_ctl.c tests/agent/fake_controller.c
$(BUILD)/tests/fjord-fake-controller: $(call objs,$(FAKE_CTL_SRCS)) $(BUILD)/libfjproto.a \
		$(BUILD)/libfjcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/.stamp-all: $(BUILD)/tests/fjord-fake-controller

TEST_SCRIPTS += tests/agent/config_errors.sh tests/agent/spool_kill.sh tests/agent/exp_e2e.sh
# The bundled stack on the nodes' own addresses through the controller (root; about 12 s).
TEST_SCRIPTS += tests/agent/host_e2e.sh
# Bundled stack against the kernel's on the emulated testbed (root; docs/benchmarks.md).
BENCH_SCRIPTS += tests/bench/agent_bundled.sh
# The agent on the host adapter against the kernel through the controller (root; docs/benchmarks.md).
BENCH_SCRIPTS += tests/bench/agent_host.sh

# Fuzz target for the config parser (tests/fuzz/fuzz_agent_config.c).
FUZZ_TARGETS += fuzz_agent_config
FUZZ_SRCS_fuzz_agent_config := agent/agent_config.c common/fj_log.c
$(BUILD)/fuzz/fuzz_agent_config: $(FUZZ_SRCS_fuzz_agent_config) agent/agent_config.h

# Fuzz target for the probe's ICMP quote and answer reader (tests/fuzz/fuzz_tracebox.c).
FUZZ_TARGETS += fuzz_tracebox
FUZZ_SRCS_fuzz_tracebox := agent/exp_tracebox.c common/fj_clock.c
$(BUILD)/fuzz/fuzz_tracebox: $(FUZZ_SRCS_fuzz_tracebox) agent/exp_tracebox.h

# Fuzz target for the responder protocol's decoders and the source framing.
FUZZ_TARGETS += fuzz_resp_frames
FUZZ_SRCS_fuzz_resp_frames := agent/responder.c agent/agent_loop.c agent/agent_loop_epoll.c \
	common/fj_log.c common/fj_clock.c
$(BUILD)/fuzz/fuzz_resp_frames: $(FUZZ_SRCS_fuzz_resp_frames) agent/responder.h
