/* Binding libuvwool.so straight to libuv under LD_PRELOAD.
 *
 * The preload defines uv_timer_start & co, and the dynamic linker binds
 * every object's references to them, libuvwool.so's included: uvwool's
 * wrapper would call back into the interposer and recurse. A thread-local
 * "inside uvwool" flag cannot tell uvwool's own calls from a user callback's
 * calls (a callback ending in `uv_close(h, cb)` is often a tail call made
 * from uvwool's trampoline), nor cover uvwool's explicit API called directly
 * by the program (the flag is never raised there: uvw_timer_start ->
 * interposer -> uvw_timer_start would register the trampoline as the user
 * callback). libuv itself calls its exported functions through its PLT
 * (uv_timer_again -> uv_timer_start) and must not be interposed either. So
 * instead the preload rewrites libuv's and libuvwool.so's relocation slots
 * (GOT / PLT entries) for exactly the interposed names to hold the real
 * libuv addresses, once, before it starts forwarding to uvwool: uvwool and
 * libuv then always talk to libuv, everybody else to uvwool. This is what
 * the dynamic linker writes into those slots, only with another definition. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preload_internal.h"
#include "uvwool/loop.h"

#if defined(__x86_64__)
#define UVWI_R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define UVWI_R_GLOB_DAT R_X86_64_GLOB_DAT
#define UVWI_R_ABS64 R_X86_64_64
#elif defined(__aarch64__)
#define UVWI_R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define UVWI_R_GLOB_DAT R_AARCH64_GLOB_DAT
#define UVWI_R_ABS64 R_AARCH64_ABS64
#endif

typedef struct {
  ElfW(Addr) base;
  const char *name;
  uintptr_t relro_start, relro_end;
} relro_t;

static int find_relro(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  relro_t *r = arg;
  if (info->dlpi_addr != r->base || strcmp(info->dlpi_name, r->name) != 0) return 0;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_GNU_RELRO) {
      r->relro_start = info->dlpi_addr + ph->p_vaddr;
      r->relro_end = r->relro_start + ph->p_memsz;
    }
  }
  return 1;
}

/* Write one slot; RELRO pages were made read-only after relocation. */
static int write_slot(void **slot, void *value, const relro_t *relro) {
  uintptr_t p = (uintptr_t)slot;
  int in_relro = p >= relro->relro_start && p < relro->relro_end;
  uintptr_t page = p & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
  size_t len = p + sizeof(void *) - page;
  if (in_relro && mprotect((void *)page, len, PROT_READ | PROT_WRITE) != 0) return -1;
  __atomic_store_n(slot, value, __ATOMIC_RELEASE);
  if (in_relro) mprotect((void *)page, len, PROT_READ);
  return 0;
}

/* glibc stores most dynamic pointers already relocated; some loaders do not. */
static uintptr_t dyn_ptr(const struct link_map *lm, ElfW(Addr) v) { return v < lm->l_addr ? lm->l_addr + v : v; }

#ifdef UVWI_R_JUMP_SLOT
/* Bind the object containing `anchor`; *count receives the slots written. */
static int bind_object(void *anchor, const char *const *names, void *const *reals, size_t n, size_t *count,
                       char *why, size_t whylen) {
  Dl_info info;
  struct link_map *lm = NULL;
  if (!dladdr1(anchor, &info, (void **)&lm, RTLD_DL_LINKMAP) || lm == NULL) {
    snprintf(why, whylen, "cannot find the object at %p", anchor);
    return -1;
  }
  const ElfW(Sym) *symtab = NULL;
  const char *strtab = NULL;
  const ElfW(Rela) *rela = NULL, *jmprel = NULL;
  size_t relasz = 0, jmprelsz = 0;
  int plt_is_rela = 1;
  for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
    switch (d->d_tag) {
    case DT_SYMTAB: symtab = (const ElfW(Sym) *)dyn_ptr(lm, d->d_un.d_ptr); break;
    case DT_STRTAB: strtab = (const char *)dyn_ptr(lm, d->d_un.d_ptr); break;
    case DT_RELA: rela = (const ElfW(Rela) *)dyn_ptr(lm, d->d_un.d_ptr); break;
    case DT_RELASZ: relasz = d->d_un.d_val; break;
    case DT_JMPREL: jmprel = (const ElfW(Rela) *)dyn_ptr(lm, d->d_un.d_ptr); break;
    case DT_PLTRELSZ: jmprelsz = d->d_un.d_val; break;
    case DT_PLTREL: plt_is_rela = d->d_un.d_val == DT_RELA; break;
    default: break;
    }
  }
  if (symtab == NULL || strtab == NULL || !plt_is_rela) {
    snprintf(why, whylen, "%s: no usable dynamic symbol or relocation table", lm->l_name);
    return -1;
  }
  relro_t relro = {lm->l_addr, lm->l_name, 0, 0};
  dl_iterate_phdr(find_relro, &relro);
  const struct {
    const ElfW(Rela) *r;
    size_t count;
  } tables[2] = {{rela, rela ? relasz / sizeof(ElfW(Rela)) : 0}, {jmprel, jmprel ? jmprelsz / sizeof(ElfW(Rela)) : 0}};
  size_t bound = 0;
  for (int t = 0; t < 2; t++) {
    for (size_t i = 0; i < tables[t].count; i++) {
      const ElfW(Rela) *r = &tables[t].r[i];
      unsigned long type = ELF64_R_TYPE(r->r_info);
      if (type != UVWI_R_JUMP_SLOT && type != UVWI_R_GLOB_DAT && type != UVWI_R_ABS64) continue;
      const char *sym = strtab + symtab[ELF64_R_SYM(r->r_info)].st_name;
      if (strncmp(sym, "uv_", 3) != 0) continue;
      for (size_t k = 0; k < n; k++) {
        if (strcmp(sym, names[k]) != 0) continue;
        if (reals[k] == NULL) {
          snprintf(why, whylen, "libuv does not define %s", names[k]);
          return -1;
        }
        void *value = type == UVWI_R_ABS64 ? (char *)reals[k] + r->r_addend : reals[k];
        if (write_slot((void **)(lm->l_addr + r->r_offset), value, &relro) != 0) {
          snprintf(why, whylen, "%s: cannot make a relocated page writable", lm->l_name);
          return -1;
        }
        bound++;
        break;
      }
    }
  }
  *count = bound;
  return 0;
}
#endif

int uvwi_bind_uvwool(const char *const *names, void *const *reals, size_t n, char *why, size_t whylen) {
#ifndef UVWI_R_JUMP_SLOT
  (void)names, (void)reals, (void)n;
  snprintf(why, whylen, "relocation binding is not implemented for this architecture");
  return -1;
#else
  /* libuv first: it calls its own exported functions through its PLT too
   * (uv_timer_again -> uv_timer_start, uv_loop_init -> uv_async_init, the
   * fs poller's timer and stat requests...). Those internal calls must stay
   * internal, as without the preload; it may have none to bind. */
  size_t count = 0;
  if (bind_object(reals[0], names, reals, n, &count, why, whylen) != 0) return -1;
  /* Then libuvwool.so, found from one of its functions (a function pointer
   * copied into a data pointer: what dladdr wants, without a cast C forbids). */
  const uvw_wrapper_t *(*fn)(size_t *) = uvw_wrapper_table;
  void *anchor;
  memcpy(&anchor, &fn, sizeof anchor);
  if (bind_object(anchor, names, reals, n, &count, why, whylen) != 0) return -1;
  if (count == 0) {
    snprintf(why, whylen, "libuvwool.so has no reference to libuv to bind");
    return -1;
  }
  return 0;
#endif
}
