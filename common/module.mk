COMMON_SRCS := common/fj_log.c common/fj_clock.c
LIBS_A += $(BUILD)/libfjcommon.a

$(BUILD)/libfjcommon.a: $(call objs,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
