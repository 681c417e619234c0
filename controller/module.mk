# controller/: fjord-controller and the fjord CLI.
# Store and scheduler sources (CTL_CORE_SRCS) and HTTP sources (CTL_HTTP_SRCS)
# form libfjctl.a, which the unit tests link too.
CTL_CORE_SRCS := controller/store_sqlite.c controller/store_sqlite_runs.c controller/store_sqlite_results.c
CTL_HTTP_SRCS :=
CPPFLAGS += -Icontroller

LIBS_A := $(BUILD)/libfjctl.a $(LIBS_A)

$(BUILD)/libfjctl.a: $(call objs,$(CTL_CORE_SRCS) $(CTL_HTTP_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

# --- fjord-controller binary (HTTP engineer) ---

# --- fjord CLI (CLI engineer) ---
