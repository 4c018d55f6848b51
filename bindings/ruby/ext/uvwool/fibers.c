/* Context that follows fibers and threads.
 *
 * Fibers: every fiber is a uvwool runtime task (uvwool/task.h). The task is
 * made where the fiber is made, so it runs in a fork of its creator's
 * context: Fiber's allocator is wrapped in C (Fiber.new, and through it
 * Fiber.schedule and the async gem's tasks); fibers Ruby makes internally
 * without the allocator (Enumerator's external iteration) get theirs at their
 * first resume, which happens where they are made. A RUBY_EVENT_FIBER_SWITCH
 * hook, which runs in the fiber switched to, makes that fiber's task current:
 * the tasks of the fibers suspended in a resume form a stack per thread; a
 * switch to a fiber on that stack (a yield, a return) leaves the tasks above
 * it, a switch to any other fiber enters its task on top. A fiber found dead
 * when it is left finishes its task; a fiber collected without ending
 * finishes it from the slot's free function.
 *
 * The slot is a hidden instance variable of the Fiber (no '@': invisible to
 * Ruby) holding a small wrapper object, so it lives and dies with the
 * fiber. Both cost more than the rest of a fiber's fork together (a
 * generic instance variable is a global hash table entry), and most fibers
 * never need them: a fiber resumed once that runs to its end is left dead.
 * So a new fiber's task waits in its thread's short "fresh" list (the fiber
 * pinned by the list, not by a slot), moves to the stack when the fiber is
 * first entered, and gets a slot only if it is left alive (a yield), when
 * the fresh list is full, or after a GC saw it in the list (a postponed job
 * then gives every fresh fiber its slot, so an unresumed fiber is
 * collectable from the next GC on).
 *
 * A hosted fiber (uvwr_fiber_host: a streaming routine's) has no task: it
 * runs in whatever context is current where it is resumed. It still gets
 * a stack entry (with no task), so the tasks of the fibers it resumes are
 * left when control comes back to it.
 *
 * The stack is per native thread (see fstack_t); with it the thread's
 * root fiber (which has no task: it runs in the thread's own context). A
 * switch back to a fiber on the stack or to the root is found by comparing
 * fibers, without reading the slot.
 *
 * Threads: lib/uvwool.rb runs the block of Thread.new, Thread.start and
 * Thread.fork in a detached fork of the creating thread's context (taken
 * when the Thread is made); the RUBY_EVENT_THREAD_BEGIN hook records each
 * thread's root fiber. Every hook runs with the GVL held, on the thread
 * concerned; none of them raises. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "uvwool_ruby.h"

#include <ruby/debug.h>

static ID id_slot;
static VALUE hosted_slot; /* the slot of every hosted fiber */

/* ---- the per-fiber slot ------------------------------------------------------- */

static void slot_free(void *ptr) {
  uvw_task_t *task = ptr;
  /* Finishing breaks task -> context -> chain -> task; the stack, which
   * alone enters tasks, holds its own reference, so this is never entered. */
  uvw_task_finish(task);
  uvw_task_unref(task);
}

static const rb_data_type_t slot_type = {
    .wrap_struct_name = "uvwool/fiber_task", .function = {.dfree = slot_free}, .flags = RUBY_TYPED_FREE_IMMEDIATELY};

/* Hand the task reference of a fiber without a slot to a new slot. */
static void slot_attach(VALUE fiber, uvw_task_t *task) {
  rb_ivar_set(fiber, id_slot, TypedData_Wrap_Struct(0, &slot_type, task));
}

/* ---- the per-thread stack of entered fiber tasks ------------------------------ */

typedef struct {
  VALUE fiber; /* pinned by stack_mark: the alive check reads it after a switch */
  uvw_task_t *task; /* NULL: a hosted fiber */
  /* The entry holds the fiber's only task reference (the fiber has no slot
   * yet); else the slot has one and the entry its own. */
  int slotless;
} entry_t;

/* Fresh fibers per thread before the oldest gets its slot. */
#define FRESH_CAP 16

/* One per native thread, in thread-local storage: Ruby 3.1 reuses native
 * threads (its thread cache), and a Ruby thread that ends by an exception
 * gets no RUBY_EVENT_THREAD_END, so the stack is not the Ruby Thread's: it
 * belongs to the native thread and is re-owned by the next Ruby thread that
 * runs there (this_stack). Every stack is in one list that one registry
 * object marks: owner (which so cannot be collected and its address reused
 * while the stack names it), root and the fibers, all pinned. */
typedef struct fstack_s {
  entry_t *e;
  size_t depth, cap;
  entry_t fresh[FRESH_CAP]; /* made here, never entered yet: all slotless */
  size_t nfresh;
  VALUE owner; /* the Ruby Thread using this stack */
  VALUE root;  /* its root fiber (no task), Qundef when unknown */
  struct fstack_s *prev, *next;
} fstack_t;

/* initial-exec: read at every switch, and a dlopened extension's default
 * TLS model costs a __tls_get_addr call per read. */
static __thread fstack_t *stk __attribute__((tls_model("initial-exec")));
static fstack_t stacks = {.prev = &stacks, .next = &stacks};
static pthread_mutex_t stacks_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t stack_key;

static void give_fresh_slots(void *unused);

static void stacks_mark(void *unused) {
  (void)unused;
  int fresh = 0;
  pthread_mutex_lock(&stacks_lock);
  for (fstack_t *s = stacks.next; s != &stacks; s = s->next) {
    rb_gc_mark(s->owner);
    rb_gc_mark(s->root);
    for (size_t i = 0; i < s->depth; i++) rb_gc_mark(s->e[i].fiber);
    for (size_t i = 0; i < s->nfresh; i++) rb_gc_mark(s->fresh[i].fiber);
    fresh |= s->nfresh > 0;
  }
  pthread_mutex_unlock(&stacks_lock);
  /* No allocation in a GC: the slots are made once it is over. */
  if (fresh) rb_postponed_job_register_one(0, give_fresh_slots, NULL);
}

/* Not write-barrier protected: every GC scans it, also a minor one. */
static const rb_data_type_t stacks_type = {
    .wrap_struct_name = "uvwool/fiber_stacks", .function = {.dmark = stacks_mark}};

static void drop_fresh(fstack_t *s);

/* The native thread exits (no GVL): only list surgery and free. */
static void stack_destroy(void *ptr) {
  fstack_t *s = ptr;
  pthread_mutex_lock(&stacks_lock);
  s->prev->next = s->next;
  s->next->prev = s->prev;
  pthread_mutex_unlock(&stacks_lock);
  /* Any thread may drop a task reference; these fibers can never run
   * again (a fiber runs only on its own thread). */
  for (size_t i = 0; i < s->depth; i++) {
    if (s->e[i].slotless) uvw_task_finish(s->e[i].task);
    uvw_task_unref(s->e[i].task);
  }
  drop_fresh(s);
  free(s->e);
  free(s);
}

static void unwind_to(size_t keep);

/* ---- fresh fibers --------------------------------------------------------------- */

/* The fresh fibers of a thread that is gone: they can never be entered. */
static void drop_fresh(fstack_t *s) {
  for (size_t i = 0; i < s->nfresh; i++) {
    uvw_task_finish(s->fresh[i].task);
    uvw_task_unref(s->fresh[i].task);
  }
  s->nfresh = 0;
}

static void fresh_add(fstack_t *s, VALUE fiber, uvw_task_t *task) {
  if (s->nfresh == FRESH_CAP) {
    entry_t oldest = s->fresh[0]; /* on the C stack: the GC still sees the fiber */
    memmove(s->fresh, s->fresh + 1, --s->nfresh * sizeof(entry_t));
    slot_attach(oldest.fiber, oldest.task);
    RB_GC_GUARD(oldest.fiber);
  }
  s->fresh[s->nfresh++] = (entry_t){fiber, task, 1};
}

/* Take fiber out of the fresh list into *out; 0 when it is not there. */
static int fresh_take(fstack_t *s, VALUE fiber, entry_t *out) {
  for (size_t i = s->nfresh; i-- > 0;) {
    if (s->fresh[i].fiber == fiber) {
      *out = s->fresh[i];
      memmove(s->fresh + i, s->fresh + i + 1, (--s->nfresh - i) * sizeof(entry_t));
      return 1;
    }
  }
  return 0;
}

/* The postponed job of stacks_mark: every fresh fiber of every thread gets
 * its slot, so the fresh list no longer keeps it alive. The entries are
 * taken out under the lock, and the slots made without it (making one may
 * run a GC, whose mark takes the lock); the fibers stay on this C stack
 * meanwhile, which the GC scans. */
static void give_fresh_slots(void *unused) {
  (void)unused;
  for (;;) {
    entry_t batch[FRESH_CAP];
    size_t n = 0;
    pthread_mutex_lock(&stacks_lock);
    for (fstack_t *s = stacks.next; s != &stacks && n == 0; s = s->next) {
      n = s->nfresh;
      memcpy(batch, s->fresh, n * sizeof(entry_t));
      s->nfresh = 0;
    }
    pthread_mutex_unlock(&stacks_lock);
    if (n == 0) return;
    for (size_t i = 0; i < n; i++) slot_attach(batch[i].fiber, batch[i].task);
    RB_GC_GUARD(batch[0].fiber);
  }
}

/* The calling Ruby thread's stack. NULL only when out of memory. */
static fstack_t *this_stack(void) {
  fstack_t *s = stk;
  VALUE thread = rb_thread_current();
  if (s == NULL) {
    if ((s = calloc(1, sizeof(*s))) == NULL) return NULL;
    s->owner = s->root = Qundef;
    pthread_setspecific(stack_key, s);
    pthread_mutex_lock(&stacks_lock);
    s->next = &stacks;
    s->prev = stacks.prev;
    stacks.prev->next = s;
    stacks.prev = s;
    pthread_mutex_unlock(&stacks_lock);
    stk = s;
  }
  if (s->owner != thread) {
    /* Left by a Ruby thread that ended here: its tasks were entered on this
     * native thread, so they are left here too. */
    unwind_to(0);
    drop_fresh(s);
    s->owner = thread;
    s->root = Qundef;
  }
  return s;
}

static void unwind_to(size_t keep) {
  fstack_t *s = stk;
  if (s == NULL) return;
  /* An entry's fiber is pinned (stacks_mark), so reading it is safe. */
  while (s->depth > keep) {
    entry_t e = s->e[--s->depth];
    if (e.task == NULL) continue; /* hosted: nothing was entered */
    uvw_task_leave(e.task);
    if (RTEST(rb_fiber_alive_p(e.fiber))) {
      if (e.slotless) slot_attach(e.fiber, e.task); /* the entry's reference goes to the slot */
      else uvw_task_unref(e.task);
    } else {
      uvw_task_finish(e.task);
      uvw_task_unref(e.task);
    }
    RB_GC_GUARD(e.fiber);
  }
}

static void push(fstack_t *s, entry_t e) {
  if (s->depth == s->cap) {
    size_t n = s->cap ? s->cap * 2 : 16;
    entry_t *grown = realloc(s->e, n * sizeof(*grown));
    if (grown == NULL) goto not_entered;
    s->e = grown;
    s->cap = n;
  }
  if (e.task && uvw_task_enter(e.task) < 0) goto not_entered;
  if (!e.slotless) uvw_task_ref(e.task);
  s->e[s->depth++] = e;
  return;
not_entered: /* the fiber runs in whatever context is current, as without uvwool */
  if (e.slotless) slot_attach(e.fiber, e.task);
}

static void on_fiber_switch(rb_event_flag_t ev, VALUE data, VALUE self, ID mid, VALUE klass) {
  (void)ev, (void)data, (void)self, (void)mid, (void)klass;
  VALUE fiber = rb_fiber_current();
  /* The owner check of this_stack is on_thread_begin's, which every Ruby
   * thread runs before its first switch. */
  fstack_t *s = stk ? stk : this_stack();
  if (s == NULL) return;
  if (fiber == s->root) { /* the thread's own context */
    unwind_to(0);
    return;
  }
  /* A yield or a return goes to a fiber on the stack: no slot lookup (a
   * generic instance variable costs more than the rest of the switch). */
  for (size_t i = s->depth; i-- > 0;) {
    if (s->e[i].fiber == fiber) {
      unwind_to(i + 1);
      return;
    }
  }
  entry_t e;
  if (!fresh_take(s, fiber, &e)) {
    VALUE slot = rb_ivar_get(fiber, id_slot); /* nil (fast) for a fiber never seen */
    if (slot == hosted_slot) {
      push(s, (entry_t){fiber, NULL, 0});
      return;
    }
    e = (entry_t){fiber, NIL_P(slot) ? NULL : RTYPEDDATA_DATA(slot), NIL_P(slot)};
    /* A fiber made without the allocator forks here; ENOMEM: it runs in
     * whatever context is current, as without uvwool. */
    if (e.task == NULL && uvw_task_new(NULL, &e.task) < 0) return;
  }
  push(s, e);
}

static rb_alloc_func_t fiber_alloc_orig;

/* Fiber's allocator, wrapped: cheaper than a prepended initialize (no
 * super dispatch) and it runs for every Fiber.new, subclasses included. */
static VALUE fiber_alloc(VALUE klass) {
  VALUE fiber = fiber_alloc_orig(klass);
  fstack_t *s = stk ? stk : this_stack(); /* as in on_fiber_switch */
  uvw_task_t *task = NULL;
  if (s == NULL || uvw_task_new(NULL, &task) < 0) rb_memerror();
  fresh_add(s, fiber, task);
  return fiber;
}

/* A fiber made with rb_fiber_new (not Fiber.new: no fresh task waits for
 * it), before its first resume: it runs with no task of its own. */
void uvwr_fiber_host(VALUE fiber) { rb_ivar_set(fiber, id_slot, hosted_slot); }

/* ---- threads --------------------------------------------------------------------- */

/* Every thread, also one made from C: the root of its fibers. The context
 * fork of Thread.new / Thread.start is entered by lib/uvwool.rb around the
 * thread's block (Context#run: exception-safe, unlike RUBY_EVENT_THREAD_END,
 * which a thread ending by an exception never sends). */
static void on_thread_begin(rb_event_flag_t ev, VALUE data, VALUE self, ID mid, VALUE klass) {
  (void)ev, (void)data, (void)self, (void)mid, (void)klass;
  fstack_t *s = this_stack();
  if (s) s->root = rb_fiber_current();
}

/* Uvwool::Core.unwind_fibers: leave every fiber task of this thread. Run at
 * the end of a thread's block (lib/uvwool.rb): a thread killed inside a
 * fiber ends without the switch back to its root, and its fork must be
 * left with nothing entered above it. */
static VALUE unwind_fibers(VALUE self) {
  (void)self;
  if (this_stack()) unwind_to(0);
  return Qnil;
}

void uvwr_init_fibers(VALUE mod) {
  rb_define_module_function(rb_const_get(mod, rb_intern("Core")), "unwind_fibers", unwind_fibers, 0);
  id_slot = rb_intern("__uvwool_task__");
  hosted_slot = rb_obj_freeze(rb_obj_alloc(rb_cObject));
  rb_gc_register_mark_object(hosted_slot);
  if (pthread_key_create(&stack_key, stack_destroy) != 0) rb_raise(rb_eRuntimeError, "uvwool: pthread_key_create");
  rb_gc_register_mark_object(TypedData_Wrap_Struct(0, &stacks_type, &stacks)); /* non-NULL data: dmark runs */
  /* The fiber that loads uvwool is its thread's root for uvwool. */
  fstack_t *s = this_stack();
  if (s == NULL) rb_memerror();
  s->root = rb_fiber_current();

  /* rb_cFiber is not exported by the 3.1 headers. */
  VALUE fiber_class = rb_const_get(rb_cObject, rb_intern("Fiber"));
  fiber_alloc_orig = rb_get_alloc_func(fiber_class);
  rb_define_alloc_func(fiber_class, fiber_alloc);

  rb_add_event_hook(on_fiber_switch, RUBY_EVENT_FIBER_SWITCH, Qnil);
  rb_add_event_hook(on_thread_begin, RUBY_EVENT_THREAD_BEGIN, Qnil);
}
