#!/usr/bin/env python3
"""CPython contextvars doing the operations bench_core.c measures in uvwool.

Prints '#' comment lines and machine-readable "op ns" lines (ns per
operation), which bench_core reads with --cpython FILE.

Method: timeit (gc off during timing), number calibrated so one run lasts
~TARGET_RUN_S, min of REPEATS runs, the cases interleaved round-robin. The
cost of timeit's own loop is removed: the same Timer setup with stmt "pass"
is timed with the same number and its min is subtracted, so the numbers are
the operation's cost (the bytecode of the call included, the for-loop
around it excluded). Every case runs inside a Context holding exactly the
bindings it names, like the C side.
"""
import contextvars
import platform
import sys
import timeit

REPEATS = 5
TARGET_RUN_S = 0.08  # x REPEATS x 11 cases x 2 (stmt and "pass") keeps this < 10 s


class Case:
    """One operation: stmt performs ops_per_stmt of it, inside ctx (a Context
    holding exactly the bindings the case needs). 'pass' with the same setup
    and number is timed alongside, and its min is subtracted."""

    def __init__(self, op, ctx, stmt, setup="pass", names=None, ops_per_stmt=1):
        g = dict(names or {})
        self.op, self.ctx, self.ops = op, ctx, ops_per_stmt
        self.timer = timeit.Timer(stmt, setup, globals=g)
        self.empty = timeit.Timer("pass", setup, globals=g)
        self.runs, self.empty_runs = [], []
        self.number = 0

    def calibrate(self):
        number = 64
        while True:  # grow until a run is long enough to scale from
            t = self.ctx.run(self.timer.timeit, number)
            if t >= TARGET_RUN_S / 8:
                break
            number *= 4
        self.number = max(1, int(number * TARGET_RUN_S / t))

    def run_once(self):
        self.runs.append(self.ctx.run(self.timer.timeit, self.number))
        self.empty_runs.append(self.ctx.run(self.empty.timeit, self.number))

    def ns(self):
        return (min(self.runs) - min(self.empty_runs)) / self.number / self.ops * 1e9


def unpack_setup(n):
    """Setup binding v0..v{n-1} as fast locals of timeit's inner function, so
    'v3.get()' costs what a get on a local variable costs in real code."""
    return ", ".join(f"v{i}" for i in range(n)) + ", = V[:%d]" % n


def context_with(*bound):
    """A new Context in which the given vars are bound."""
    ctx = contextvars.Context()
    for var in bound:
        ctx.run(var.set, 1)
    return ctx


def main():
    nvars = 1000
    V = [contextvars.ContextVar(f"v{i}") for i in range(nvars)]
    dflt = contextvars.ContextVar("dflt", default=7)
    setvar = contextvars.ContextVar("set")
    unbound = contextvars.ContextVar("unbound")
    names = {"V": V, "dflt": dflt, "s": setvar, "u": unbound,
             "copy_context": contextvars.copy_context}

    one = context_with(V[0])
    cases = [
        # get: a bound variable, then an unbound one with a default, in a
        # context holding one binding (v0).
        Case("get_bound", one, "v0.get()", "v0 = V[0]", names),
        Case("get_default", one, "dflt.get()", names=names),
    ]
    # get_N: each of the N bound variables once per statement (straight-line
    # code, no inner loop), in a context holding exactly N bindings. CPython
    # caches a variable's last value while the context is unchanged, so
    # these are cache hits.
    for n in (1, 8, 64, 1000):
        cases.append(Case(f"get_{n}", context_with(*V[:n]),
                          "; ".join(f"v{i}.get()" for i in range(n)),
                          unpack_setup(n), names, ops_per_stmt=n))
    # Mutations and context operations, in a context holding v0 and s;
    # set+reset of an unbound variable in a context of its own.
    main_ctx = context_with(V[0], setvar)
    cases += [
        Case("set", main_ctx, "s.set(1)", names=names),  # the token is discarded
        Case("set_reset", main_ctx, "t = s.set(1); s.reset(t)", names=names),
        Case("set_reset_unbound", context_with(V[0]), "t = u.set(1); u.reset(t)", names=names),
        Case("copy", main_ctx, "copy_context()", names=names),
        Case("run", main_ctx, "ctx.run(f)", "ctx = copy_context()\ndef f(): pass", names),
    ]

    print(f"# CPython {platform.python_version()} ({platform.python_implementation()}) contextvars")
    print(f"# ns/op = (min of {REPEATS} timeit runs) - (min of as many runs of 'pass' with the same"
          " setup and number): timeit's empty-loop overhead is SUBTRACTED")
    loop_ns = min(timeit.Timer("pass").repeat(REPEATS, 10**6)) / 10**6 * 1e9
    print(f"# (that overhead is ~{loop_ns:.1f} ns per iteration here)", flush=True)

    # Calibrate everything, then time round-robin: a burst of load from
    # another process spoils one run of several cases, not all runs of one.
    for case in cases:
        case.calibrate()
    for _ in range(REPEATS):
        for case in cases:
            case.run_once()

    results = {case.op: case.ns() for case in cases}
    for op, ns in results.items():
        print(f"{op} {ns:.2f}")
    print("# fork: CPython has no fork; a new task gets copy_context(), so fork = copy")
    print(f"fork {results['copy']:.2f}")
    print("# enter_exit: no public CPython equivalent (Context.run is the only way in)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
