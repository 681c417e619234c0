# stack/: libmps, the bundled userspace MPTCP stack (see docs/stack.md).
MPS_SRCS := stack/mps_opt.c
LIBS_A += $(BUILD)/libmps.a

$(BUILD)/libmps.a: $(call objs,$(MPS_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
