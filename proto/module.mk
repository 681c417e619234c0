# proto/: the wire contract. fjord.proto is compiled by protoc-c at build
# time into $(BUILD)/gen (never committed).
PROTO_GEN_C := $(BUILD)/gen/fjord.pb-c.c
PROTO_GEN_H := $(BUILD)/gen/fjord.pb-c.h
GEN_HDRS += $(PROTO_GEN_H)
PROTO_SRCS := proto/pbjson.c proto/pbjson_enc.c proto/pbjson_dec.c
PROTO_OBJS := $(OBJ)/$(PROTO_GEN_C:.c=.o) $(call objs,$(PROTO_SRCS))
LIBS_A += $(BUILD)/libfjproto.a

$(PROTO_GEN_C) $(PROTO_GEN_H): proto/fjord.proto
	@mkdir -p $(BUILD)/gen
	protoc-c -Iproto --c_out=$(BUILD)/gen proto/fjord.proto

$(BUILD)/libfjproto.a: $(PROTO_OBJS)
	$(AR) rcs $@ $^

# Test-only schemas for the JSON mapping (bytes, maps, every integer
# encoding, proto2 presence): generated into $(BUILD)/gen, linked only into
# the unit tests, the cross-check tool and the fuzz target.
PBJSON_TEST_PROTOS := pbjson_test pbjson_test2
PBJSON_TEST_GEN_C := $(patsubst %,$(BUILD)/gen/%.pb-c.c,$(PBJSON_TEST_PROTOS))
GEN_HDRS += $(PBJSON_TEST_GEN_C:.c=.h)
UNIT_SRCS += $(PBJSON_TEST_GEN_C) tests/proto/pbjson_fill.c
$(OBJ)/tests/unit/test_pbjson.o $(OBJ)/tests/proto/pbjson_tool.o: CPPFLAGS += -Itests/proto

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: tests/proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c -Itests/proto --c_out=$(BUILD)/gen $<
# Made by a pattern rule only, so make would delete them as intermediate.
.SECONDARY: $(PBJSON_TEST_GEN_C) $(PBJSON_TEST_GEN_C:.c=.h)

# JSON <-> binary converter used only by tests/proto/crosscheck.sh (not in BINS).
$(BUILD)/tests/pbjson-tool: $(call objs,tests/proto/pbjson_tool.c tests/proto/pbjson_fill.c $(PBJSON_TEST_GEN_C)) \
		$(BUILD)/libfjproto.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libfjproto.a $(LDLIBS)

TEST_SCRIPTS += tests/proto/crosscheck.sh

# Benchmark of the mapping, run by tests/bench/pbjson.sh (not in BINS).
$(OBJ)/tests/bench/bench_pbjson.o: CPPFLAGS += -Itests/proto
$(BUILD)/tests/bench-pbjson: $(call objs,tests/bench/bench_pbjson.c tests/proto/pbjson_fill.c \
		$(PBJSON_TEST_GEN_C)) $(BUILD)/libfjproto.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libfjproto.a $(LDLIBS)
BENCH_SCRIPTS += tests/bench/pbjson.sh

FUZZ_TARGETS += fuzz_pbjson
FUZZ_SRCS_fuzz_pbjson := $(PROTO_GEN_C) $(PBJSON_TEST_GEN_C) $(PROTO_SRCS)
# The generic fuzz rule only depends on the target's own file: rebuild on
# changes to the code under test too.
$(BUILD)/fuzz/fuzz_pbjson: $(FUZZ_SRCS_fuzz_pbjson) proto/pbjson.h proto/pbjson_priv.h
