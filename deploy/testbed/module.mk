# deploy/testbed: the emulated NorNet-style testbed.
# libfjtestbed.a: topology parser, address plan and the link model (unit-tested).
TESTBED_LIB_SRCS := deploy/testbed/tb_config.c deploy/testbed/tb_emu.c
LIBS_A += $(BUILD)/libfjtestbed.a

$(BUILD)/libfjtestbed.a: $(call objs,$(TESTBED_LIB_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
