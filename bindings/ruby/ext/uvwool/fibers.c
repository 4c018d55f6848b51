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
 * Ruby), so it lives and dies with the fiber. The stack is per native
 * thread (see fstack_t); with it the thread's root fiber (which has no
 * task: it runs in the thread's own context). A switch back to a fiber on
 * the stack or to the root is found by comparing fibers, without reading
 * the slot.
 *
 * Threads: lib/uvwool.rb runs the block of Thread.new, Thread.start and
 * Thread.fork in a detached fork of the creating thread's context (taken
 * when the Thread is made); the RUBY_EVENT_THREAD_BEGIN hook records each
 * thread's root fiber. Every hook runs with the GVL held, on the thread
 * concerned; none of them raises. */
#include <pthread.h>
#include <stdlib.h>

#include "uvwool_ruby.h"

static ID id_slot;

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
  VALUE owner; /* the Ruby Thread using this stack */
  VALUE root;  /* its root fiber (no task), Qundef when unknown */
  struct fstack_s *prev, *next;
} fstack_t;

static __thread fstack_t *stk;
static fstack_t stacks = {.prev = &stacks, .next = &stacks};
static pthread_mutex_t stacks_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t stack_key;

static void stacks_mark(void *unused) {
  (void)unused;
  pthread_mutex_lock(&stacks_lock);
  for (fstack_t *s = stacks.next; s != &stacks; s = s->next) {
    rb_gc_mark(s->owner);
    rb_gc_mark(s->root);
    for (size_t i = 0; i < s->depth; i++) rb_gc_mark(s->e[i].fiber);
  }
  pthread_mutex_unlock(&stacks_lock);
}

/* Not write-barrier protected: every GC scans it, also a minor one. */
static const rb_data_type_t stacks_type = {
    .wrap_struct_name = "uvwool/fiber_stacks", .function = {.dmark = stacks_mark}};

/* The native thread exits (no GVL): only list surgery and free. */
static void stack_destroy(void *ptr) {
  fstack_t *s = ptr;
  pthread_mutex_lock(&stacks_lock);
  s->prev->next = s->next;
  s->next->prev = s->prev;
  pthread_mutex_unlock(&stacks_lock);
  for (size_t i = 0; i < s->depth; i++) uvw_task_unref(s->e[i].task); /* any thread */
  free(s->e);
  free(s);
}

static void unwind_to(size_t keep);

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
    uvw_task_leave(e.task);
    if (!RTEST(rb_fiber_alive_p(e.fiber))) uvw_task_finish(e.task);
    uvw_task_unref(e.task);
  }
}

static void push(fstack_t *s, VALUE fiber, uvw_task_t *task) {
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
  fstack_t *s = this_stack();
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
  VALUE slot = rb_ivar_get(fiber, id_slot);
  uvw_task_t *task = NIL_P(slot) ? attach_task(fiber) : RTYPEDDATA_DATA(slot);
  if (task != NULL) push(s, fiber, task);
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
