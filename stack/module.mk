# stack/: libmps, the bundled userspace MPTCP stack (see docs/stack.md).
MPS_SRCS := stack/mps_opt.c stack/mps_crypto.c stack/mps_seg.c
LIBS_A += $(BUILD)/libmps.a

$(BUILD)/libmps.a: $(call objs,$(MPS_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
