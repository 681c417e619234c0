# stack/: libmps, the bundled userspace MPTCP stack (see docs/stack.md).
MPS_SRCS := stack/mps_opt.c stack/mps_crypto.c stack/mps_seg.c stack/mps_stack.c stack/mps_tcp.c \
	stack/mps_fallback.c stack/mps_tcp_out.c stack/mps_join.c stack/mps_pm.c stack/mps_sched.c stack/mps_cc.c stack/mps_sim.c \
	stack/mps_tun.c stack/mps_trace.c stack/mps_host.c
LIBS_A += $(BUILD)/libmps.a

$(BUILD)/libmps.a: $(call objs,$(MPS_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# Fuzz targets owned by the stack (tests/fuzz/).
FUZZ_TARGETS += fuzz_mptcp_opt
FUZZ_SRCS_fuzz_mptcp_opt := stack/mps_opt.c
# The generic fuzz rule only knows the target's own .c; rebuild when the code under test changes.
$(BUILD)/fuzz/fuzz_mptcp_opt: $(FUZZ_SRCS_fuzz_mptcp_opt) stack/mps_opt.h stack/prot/mptcp.h stack/prot/tcp.h

# mpsperf: the stack's own iperf over a TUN device.
MPSPERF_SRCS := stack/tools/mpsperf.c
BINS += $(BUILD)/mpsperf

$(BUILD)/mpsperf: $(call objs,$(MPSPERF_SRCS)) $(BUILD)/libmps.a $(BUILD)/libfjcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call objs,$(MPSPERF_SRCS)) $(BUILD)/libmps.a $(BUILD)/libfjcommon.a $(LDLIBS)

# Interop with the Linux kernel's MPTCP (root, network namespaces; skips without root).
TEST_SCRIPTS += tests/interop/mpsperf_cli.sh tests/interop/kernel_basic.sh tests/interop/kernel_join.sh
TEST_SCRIPTS += tests/interop/kernel_fallback.sh tests/interop/kernel_fastclose.sh tests/interop/kernel_pathcut.sh
# The host adapter on a namespace's own addresses against the kernel (mps_host.h).
TEST_SCRIPTS += tests/interop/host_kernel.sh

FUZZ_TARGETS += fuzz_mps_input
FUZZ_SRCS_fuzz_mps_input := stack/mps_opt.c stack/mps_crypto.c stack/mps_seg.c stack/mps_stack.c \
	stack/mps_tcp.c stack/mps_fallback.c stack/mps_tcp_out.c stack/mps_join.c stack/mps_pm.c \
	stack/mps_sched.c stack/mps_cc.c
$(BUILD)/fuzz/fuzz_mps_input: $(FUZZ_SRCS_fuzz_mps_input) stack/mps_internal.h stack/mps_tcp.h \
	stack/include/mps.h

# Goodput against the kernel's MPTCP (root; figures in docs/benchmarks.md, "Bundled stack").
BENCH_SCRIPTS += tests/bench/mps_goodput.sh tests/bench/mps_twopath.sh tests/bench/mps_twopath_raw.sh \
	tests/bench/mps_pathcut.sh
BENCH_SCRIPTS += tests/bench/tun_offload.sh
# The host adapter against the kernel on two paths (docs/benchmarks.md, "Host adapter").
BENCH_SCRIPTS += tests/bench/mps_host.sh

# The TUN adapter's vnet header checks and checksum completion (tests/fuzz/fuzz_tun_vnet.c).
FUZZ_TARGETS += fuzz_tun_vnet
FUZZ_SRCS_fuzz_tun_vnet := stack/mps_tun.c stack/mps_seg.c
$(BUILD)/fuzz/fuzz_tun_vnet: $(FUZZ_SRCS_fuzz_tun_vnet) stack/include/mps_tun.h stack/mps_seg.h

# The host adapter's receive checks and BPF program (tests/fuzz/fuzz_mps_host.c).
FUZZ_TARGETS += fuzz_mps_host
FUZZ_SRCS_fuzz_mps_host := stack/mps_host.c
$(BUILD)/fuzz/fuzz_mps_host: $(FUZZ_SRCS_fuzz_mps_host) stack/include/mps_host.h \
	tests/unit/mps_host_bpf_run.h
