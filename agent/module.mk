# agent/: fjord-agent. Everything except main.c forms libfjagent.a, which
# the unit tests link too.
AGENT_SRCS := agent/agent_loop.c agent/agent_loop_epoll.c agent/agent_backoff.c \
	agent/agent_config.c agent/agent_spool.c agent/agent_arena.c agent/agent_sysinfo.c agent/agent_http.c agent/responder.c agent/exp.c agent/exp_echo.c agent/mptcp_info.c agent/agent_runner.c
AGENT_MAIN := agent/main.c
CPPFLAGS += -Iagent

LIBS_A := $(BUILD)/libfjagent.a $(LIBS_A)

$(BUILD)/libfjagent.a: $(call objs,$(AGENT_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
