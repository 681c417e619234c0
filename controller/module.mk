# controller/: fjord-controller and the fjord CLI.
# Store and scheduler sources (CTL_CORE_SRCS) and HTTP sources (CTL_HTTP_SRCS)
# form libfjctl.a, which the unit tests link too.
CTL_CORE_SRCS := controller/store_sqlite.c controller/store_sqlite_runs.c controller/store_sqlite_results.c \
	controller/sched.c controller/sched_expand.c
CTL_HTTP_SRCS := controller/config.c controller/auth.c controller/http.c controller/http_buf.c \
	controller/http_poll.c controller/metrics.c controller/traces.c controller/routes.c \
	controller/routes_agent.c controller/routes_trace.c controller/routes_user.c \
	controller/routes_query.c
CPPFLAGS += -Icontroller

LIBS_A := $(BUILD)/libfjctl.a $(LIBS_A)

$(BUILD)/libfjctl.a: $(call objs,$(CTL_CORE_SRCS) $(CTL_HTTP_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

# --- fjord-controller binary (HTTP engineer) ---

# --- fjord CLI (CLI engineer) ---
CLI_SRCS := controller/cli_main.c controller/cli_http.c controller/cli_fmt.c \
	controller/cli_query.c controller/cli_exp.c
BINS += $(BUILD)/fjord
TEST_SCRIPTS += tests/cli/exit_codes.sh

$(BUILD)/fjord: $(call objs,$(CLI_SRCS)) $(BUILD)/libfjproto.a $(BUILD)/libfjcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call objs,$(CLI_SRCS)) $(BUILD)/libfjproto.a \
		$(BUILD)/libfjcommon.a $(LDLIBS)
