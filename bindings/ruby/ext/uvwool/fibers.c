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
 * Ruby), so it lives and dies with the fiber; the stack is a hidden object
 * on the Thread, whose mark function pins the fibers in it; a thread's root fiber holds
 * false there, meaning "the thread's own context, no task".
 *
 * Threads: Thread#initialize (Thread.new) is prepended: it takes a
 * detached fork (uvw_context_fork with UVW_PROPAGATE_THREAD) of the creating
 * thread's current context, and a RUBY_EVENT_THREAD_BEGIN hook enters it in
 * the new thread (RUBY_EVENT_THREAD_END leaves it). Every hook runs with the
 * GVL held, on the thread concerned; none of them raises. */
#include <stdlib.h>

#include "uvwool_ruby.h"

static ID id_slot, id_fork;

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

/* A task forking the current context, stored in fiber's slot. NULL when
 * the task cannot be made (ENOMEM): the fiber then runs in whatever
 * context is current, as without uvwool. */
static uvw_task_t *attach_task(VALUE fiber) {
  uvw_task_t *task = NULL;
  if (uvw_task_new(NULL, &task) < 0) return NULL;
  rb_ivar_set(fiber, id_slot, TypedData_Wrap_Struct(0, &slot_type, task));
  return task;
}

/* ---- the per-thread stack of entered fiber tasks ------------------------------ */

typedef struct {
  VALUE fiber; /* pinned by stack_mark: the alive check reads it after a switch */
  uvw_task_t *task;
} entry_t;

typedef struct {
  entry_t *e;
  size_t depth, cap;
} fstack_t;

/* The stack of the calling thread, owned by a hidden object on its Thread
 * (so the GC marks the fibers in it and frees it with the Thread). */
static __thread fstack_t *stk;
static __thread uvw_context_t *thread_ctx; /* the fork entered by THREAD_BEGIN */
static ID id_stack;

static void stack_mark(void *ptr) {
  fstack_t *s = ptr;
  for (size_t i = 0; i < s->depth; i++) rb_gc_mark(s->e[i].fiber);
}

static void stack_free(void *ptr) {
  fstack_t *s = ptr;
  /* Only a Thread that ended is collected, and THREAD_END emptied its stack. */
  for (size_t i = 0; i < s->depth; i++) uvw_task_unref(s->e[i].task);
  free(s->e);
  xfree(s);
}

/* Not write-barrier protected: every GC scans it, also a minor one. */
static const rb_data_type_t stack_type = {
    .wrap_struct_name = "uvwool/fiber_stack", .function = {.dmark = stack_mark, .dfree = stack_free}};

static fstack_t *this_stack(void) {
  if (stk == NULL) {
    fstack_t *s;
    VALUE obj = TypedData_Make_Struct(0, fstack_t, &stack_type, s);
    rb_ivar_set(rb_thread_current(), id_stack, obj);
    stk = s;
  }
  return stk;
}

static void unwind_to(size_t keep) {
  fstack_t *s = stk;
  if (s == NULL) return;
  while (s->depth > keep) {
    entry_t e = s->e[--s->depth];
    uvw_task_leave(e.task);
    if (!RTEST(rb_fiber_alive_p(e.fiber))) uvw_task_finish(e.task);
    uvw_task_unref(e.task);
  }
}

static void push(VALUE fiber, uvw_task_t *task) {
  fstack_t *s = this_stack();
  if (s->depth == s->cap) {
    size_t n = s->cap ? s->cap * 2 : 16;
    entry_t *e = realloc(s->e, n * sizeof(*e));
    if (e == NULL) return;
    s->e = e;
    s->cap = n;
  }
  if (uvw_task_enter(task) < 0) return;
  s->e[s->depth++] = (entry_t){fiber, uvw_task_ref(task)};
}

static void on_fiber_switch(rb_event_flag_t ev, VALUE data, VALUE self, ID mid, VALUE klass) {
  (void)ev, (void)data, (void)self, (void)mid, (void)klass;
  VALUE fiber = rb_fiber_current();
  VALUE slot = rb_ivar_get(fiber, id_slot);
  if (slot == Qfalse) { /* a root fiber: the thread's own context */
    unwind_to(0);
    return;
  }
  uvw_task_t *task = NIL_P(slot) ? attach_task(fiber) : RTYPEDDATA_DATA(slot);
  if (task == NULL) return;
  for (size_t i = stk ? stk->depth : 0; i-- > 0;) {
    if (stk->e[i].task == task) {
      unwind_to(i + 1);
      return;
    }
  }
  push(fiber, task);
}

static rb_alloc_func_t fiber_alloc_orig;

/* Fiber's allocator, wrapped: cheaper than a prepended initialize (no
 * super dispatch) and it runs for every Fiber.new, subclasses included. */
static VALUE fiber_alloc(VALUE klass) {
  VALUE fiber = fiber_alloc_orig(klass);
  if (attach_task(fiber) == NULL) rb_memerror();
  return fiber;
}

/* ---- threads --------------------------------------------------------------------- */

static void fork_free(void *ptr) { uvw_context_unref(ptr); }

static const rb_data_type_t fork_type = {
    .wrap_struct_name = "uvwool/thread_fork", .function = {.dfree = fork_free}, .flags = RUBY_TYPED_FREE_IMMEDIATELY};

static VALUE thread_initialize(int argc, VALUE *argv, VALUE self) {
  /* Before super: the thread starts running inside it. */
  uvw_context_t *fork = uvw_context_fork(uvw_context_current(), UVW_PROPAGATE_THREAD);
  if (fork == NULL) rb_memerror();
  rb_ivar_set(self, id_fork, TypedData_Wrap_Struct(0, &fork_type, fork));
  return rb_call_super_kw(argc, argv, RB_PASS_CALLED_KEYWORDS);
}

static void on_thread_begin(rb_event_flag_t ev, VALUE data, VALUE self, ID mid, VALUE klass) {
  (void)ev, (void)data, (void)self, (void)mid, (void)klass;
  rb_ivar_set(rb_fiber_current(), id_slot, Qfalse);
  VALUE fork = rb_ivar_get(rb_thread_current(), id_fork);
  if (NIL_P(fork)) return; /* Thread.start / Thread.fork skip initialize */
  uvw_context_t *ctx = RTYPEDDATA_DATA(fork);
  if (uvw_context_enter(ctx) == 0) thread_ctx = ctx;
}

static void on_thread_end(rb_event_flag_t ev, VALUE data, VALUE self, ID mid, VALUE klass) {
  (void)ev, (void)data, (void)self, (void)mid, (void)klass;
  unwind_to(0);
  stk = NULL; /* the Thread's object frees it */
  if (thread_ctx) uvw_context_exit(thread_ctx);
  thread_ctx = NULL;
}

void uvwr_init_fibers(VALUE mod) {
  id_slot = rb_intern("__uvwool_task__");
  id_fork = rb_intern("__uvwool_fork__");
  id_stack = rb_intern("__uvwool_fiber_stack__");
  /* The fiber that loads uvwool is its thread's root for uvwool. */
  rb_ivar_set(rb_fiber_current(), id_slot, Qfalse);

  /* rb_cFiber is not exported by the 3.1 headers. */
  VALUE fiber_class = rb_const_get(rb_cObject, rb_intern("Fiber"));
  fiber_alloc_orig = rb_get_alloc_func(fiber_class);
  rb_define_alloc_func(fiber_class, fiber_alloc);
  VALUE thread_fork = rb_define_module_under(mod, "ThreadFork");
  rb_define_method(thread_fork, "initialize", thread_initialize, -1);
  rb_prepend_module(rb_cThread, thread_fork);

  rb_add_event_hook(on_fiber_switch, RUBY_EVENT_FIBER_SWITCH, Qnil);
  rb_add_event_hook(on_thread_begin, RUBY_EVENT_THREAD_BEGIN, Qnil);
  rb_add_event_hook(on_thread_end, RUBY_EVENT_THREAD_END, Qnil);
}
