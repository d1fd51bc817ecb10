/* LD_PRELOAD library: this process (and every thread it starts) sees a CPU without AVX-512.
 *
 * Why: machines here differ (AVX-512 with VNNI and BF16, or AVX2 only, as most laptops), and the
 * libraries we run (ONNX Runtime's MLAS, numpy, oneDNN) choose their kernels from CPUID. With
 * CPUID faulting (Linux arch_prctl ARCH_SET_CPUID, where the CPU and kernel support it), every
 * CPUID instruction traps to the SIGSEGV handler below, which runs the real CPUID and clears the
 * AVX-512 and AMX bits, so those libraries take their AVX2 code paths on this same CPU.
 *
 * What it is not: an AVX2 machine. Clock, caches and memory stay this CPU's, and code that read
 * CPUID before this library loaded (the dynamic loader, glibc's string functions) keeps what it
 * saw. A figure measured under it names itself as such (export/quantize.py:cpu_description).
 * A program that installs its own SIGSEGV handler later (Python's faulthandler, -X faulthandler)
 * takes CPUID's traps from this one: run benchmarks without it.
 *
 * Build and run: bench/avx2/run.sh COMMAND... (it exits with an error where CPUID faulting is not
 * available, instead of measuring the unmasked CPU).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID 0x1012

static struct sigaction previous;

static void real_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* Leaf 7 sub-leaf 0: EBX avx512f/dq/ifma/pf/er/cd/bw/vl; ECX avx512_vbmi/vbmi2/vnni/bitalg/vpopcntdq;
 * EDX avx512_4vnniw/4fmaps/vp2intersect/amx_bf16/avx512_fp16/amx_tile/amx_int8. Sub-leaf 1: EAX avx512_bf16. */
static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  if (leaf == 7 && sub == 0) {
    r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
    r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
    r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
  } else if (leaf == 7 && sub == 1) {
    r[0] &= ~(1u << 5);
  }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
  ucontext_t *uc = (ucontext_t *)context;
  greg_t *g = uc->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)g[REG_RIP];
  if (ip[0] == 0x0f && ip[1] == 0xa2) { /* CPUID */
    uint32_t r[4], leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX];
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    real_cpuid(leaf, sub, r);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    mask(leaf, sub, r);
    g[REG_RAX] = r[0];
    g[REG_RBX] = r[1];
    g[REG_RCX] = r[2];
    g[REG_RDX] = r[3];
    g[REG_RIP] += 2;
    return;
  }
  /* Any other fault: what would have happened without this library. */
  if (previous.sa_flags & SA_SIGINFO) {
    previous.sa_sigaction(sig, info, context);
  } else if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL) {
    previous.sa_handler(sig);
  } else {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

__attribute__((constructor)) static void mask_avx512_init(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &previous) != 0 || syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
    fprintf(stderr, "mask_avx512: CPUID faulting is not available here (arch_prctl ARCH_SET_CPUID); "
                    "cannot hide AVX-512 from this process\n");
    _exit(3);
  }
}
