# agent/: fjord-agent. Everything except main.c forms libfjagent.a, which
# the unit tests link too.
AGENT_SRCS := agent/agent_loop.c agent/agent_loop_epoll.c agent/agent_backoff.c \
	agent/agent_config.c agent/agent_spool.c
AGENT_MAIN := agent/main.c
CPPFLAGS += -Iagent

LIBS_A := $(BUILD)/libfjagent.a $(LIBS_A)

$(BUILD)/libfjagent.a: $(call objs,$(AGENT_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
