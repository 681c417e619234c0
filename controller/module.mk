# controller/: fjord-controller and the fjord CLI.
# Store and scheduler sources (CTL_CORE_SRCS) and HTTP sources (CTL_HTTP_SRCS)
# form libfjctl.a, which the unit tests link too.
CTL_CORE_SRCS := controller/store_sqlite.c controller/store_sqlite_runs.c controller/store_sqlite_results.c \
	controller/store_sqlite_agg.c controller/sched.c controller/sched_expand.c \
	controller/census.c controller/store_sqlite_census.c
CTL_HTTP_SRCS := controller/config.c controller/auth.c controller/http.c controller/http_buf.c \
	controller/http_poll.c controller/metrics.c controller/traces.c controller/routes.c \
	controller/routes_agent.c controller/routes_trace.c controller/routes_user.c \
	controller/routes_query.c controller/census_http.c
# Request text parsers without a connection (also built into fuzz_ctl_http_parse).
CTL_HTTP_SRCS += controller/http_parse.c
CPPFLAGS += -Icontroller

LIBS_A := $(BUILD)/libfjctl.a $(LIBS_A)

$(BUILD)/libfjctl.a: $(call objs,$(CTL_CORE_SRCS) $(CTL_HTTP_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

# --- store benchmark, run by tests/bench/bench_store.sh (not in BINS) ---
$(BUILD)/tests/bench-store: $(call objs,tests/bench/bench_store.c) $(LIBS_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(call objs,tests/bench/bench_store.c) $(LINK_LIBS)
BENCH_SCRIPTS += tests/bench/bench_store.sh

# --- fjord-controller binary ---
BINS += $(BUILD)/fjord-controller

CTL_HTTP_LIBS := $(BUILD)/libfjctl.a $(BUILD)/libfjproto.a $(BUILD)/libfjcommon.a

$(BUILD)/fjord-controller: $(call objs,controller/main.c) $(CTL_HTTP_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(call objs,controller/main.c) $(CTL_HTTP_LIBS) $(LDLIBS)

# API benchmark, run by tests/bench/bench_poll.sh (not in BINS).
BENCH_SCRIPTS += tests/bench/bench_poll.sh
$(BUILD)/tests/bench-poll: $(call objs,tests/bench/bench_poll.c) $(CTL_HTTP_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(call objs,tests/bench/bench_poll.c) $(CTL_HTTP_LIBS) $(LDLIBS)

# --- fjord CLI ---
CLI_SRCS := controller/cli_main.c controller/cli_http.c controller/cli_fmt.c \
	controller/cli_query.c controller/cli_exp.c controller/census_cli.c
BINS += $(BUILD)/fjord
TEST_SCRIPTS += tests/cli/exit_codes.sh tests/e2e/control_plane.sh tests/e2e/kill_controller.sh
TEST_SCRIPTS += tests/e2e/testbed_campaign.sh

$(BUILD)/fjord: $(call objs,$(CLI_SRCS)) $(BUILD)/libfjproto.a $(BUILD)/libfjcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call objs,$(CLI_SRCS)) $(BUILD)/libfjproto.a \
		$(BUILD)/libfjcommon.a $(LDLIBS)

# Fuzz targets for the config file and the HTTP layer's text parsers.
FUZZ_TARGETS += fuzz_ctl_config fuzz_ctl_http_parse
FUZZ_SRCS_fuzz_ctl_config := controller/config.c common/fj_log.c
$(BUILD)/fuzz/fuzz_ctl_config: $(FUZZ_SRCS_fuzz_ctl_config) controller/config.h
FUZZ_SRCS_fuzz_ctl_http_parse := controller/http_parse.c controller/traces.c controller/auth.c \
	common/fj_clock.c $(PROTO_GEN_C) proto/pbjson.c proto/pbjson_enc.c proto/pbjson_dec.c
$(BUILD)/fuzz/fuzz_ctl_http_parse: $(FUZZ_SRCS_fuzz_ctl_http_parse) controller/http_parse.h \
	controller/traces.h
