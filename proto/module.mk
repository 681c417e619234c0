# proto/: the wire contract. fjord.proto is compiled by protoc-c at build
# time into $(BUILD)/gen (never committed).
PROTO_GEN_C := $(BUILD)/gen/fjord.pb-c.c
PROTO_GEN_H := $(BUILD)/gen/fjord.pb-c.h
GEN_HDRS += $(PROTO_GEN_H)
PROTO_SRCS :=
PROTO_OBJS := $(OBJ)/$(PROTO_GEN_C:.c=.o) $(call objs,$(PROTO_SRCS))
LIBS_A += $(BUILD)/libfjproto.a

$(PROTO_GEN_C) $(PROTO_GEN_H): proto/fjord.proto
	@mkdir -p $(BUILD)/gen
	protoc-c -Iproto --c_out=$(BUILD)/gen proto/fjord.proto

$(BUILD)/libfjproto.a: $(PROTO_OBJS)
	$(AR) rcs $@ $^
