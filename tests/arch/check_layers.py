#!/usr/bin/env python3
"""The server's layering, checked on the built objects (ARCHITECTURE.md).

A module is one server/<folder>/<name>.c. Module A calls module B when A's
object file has an undefined symbol that B's object defines (nm), which is
what the linker sees, so a call hidden behind a macro or an extern counts
and a header included only for a type does not. Four rules:

  1. a module calls its own folder or a folder of a lower layer, never one
     above and never a sibling of the same rank;
  2. no loop of calls spans more than two modules (strongly connected
     components of the call graph have at most two members);
  3. no server source file is longer than MAX_LINES;
  4. no server file includes a header of a folder above its own (or of a
     sibling of the same rank): even a type from an upper layer ties the
     lower one to it, and the folders must read as the layering.

usage: check_layers.py <build dir> <source dir>
"""
import os
import re
import subprocess
import sys

# Lowest first. A folder may call only folders of a strictly lower rank
# (and itself). ops and deliver are both tops: the gateway's wiring and the
# separate deliverer process, which share nothing but the base.
RANK = {"base": 0, "gateway": 1, "bus": 2, "store": 3, "rooms": 4, "send": 5,
        "api": 6, "ops": 7, "deliver": 7}
# Folders that may call only some of the lower ones: the deliverer is a
# process of its own and shares nothing with the gateway but the base.
ONLY = {"deliver": {"base"}}
MAX_LINES = 800


def may_call(caller, callee):
    """Whether folder caller may call (or include) folder callee."""
    if caller == callee:
        return True
    if caller in ONLY:
        return callee in ONLY[caller]
    return RANK[callee] < RANK[caller]
# Rule 5: the C library's allocator, and who may import it.
ALLOCATOR = {"malloc", "calloc", "realloc", "reallocarray", "strdup", "strndup", "free",
             "__strdup", "__strndup"}
ALLOCATOR_OWNERS = {"base/mem", "base/lwsmem"}
INCLUDE = re.compile(r'\s*#\s*include\s+"([^"]+)"')


def objects(build, src):
    root = os.path.join(build, "server", "CMakeFiles", "parley_core.dir")
    out = {}
    for folder in RANK:
        d = os.path.join(root, folder)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            # An object whose source was moved or removed is left behind in
            # a reused build directory; it is not part of the server.
            if f.endswith(".c.o") and os.path.exists(os.path.join(src, "server", folder, f[:-2])):
                out[f"{folder}/{f[:-4]}"] = os.path.join(d, f)
    return out


def symbols(path):
    defined, undefined = set(), set()
    res = subprocess.run(["nm", "-P", path], capture_output=True, text=True, check=True)
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in "TDBRGSVW" :
            defined.add(name)
    return defined, undefined


def allocator_imports(build, src, objs):
    """alloc <module> <symbols>: an object importing the allocator itself."""
    every = dict(objs)
    # The executable's entry and the protocol library are outside the
    # layers but under the same rule.
    for d, name in (("server/CMakeFiles/parleyd.dir/ops", "ops"),
                    ("protocol/CMakeFiles/parley_proto.dir", "protocol")):
        full = os.path.join(build, d)
        if os.path.isdir(full):
            for f in sorted(os.listdir(full)):
                if f.endswith(".c.o") and os.path.exists(
                        os.path.join(src, "server" if name == "ops" else "", name, f[:-2])):
                    every[f"{name}/{f[:-4]}"] = os.path.join(full, f)
    out = set()
    for mod, path in every.items():
        if mod in ALLOCATOR_OWNERS:
            continue
        used = sorted(symbols(path)[1] & ALLOCATOR)
        if used:
            out.add(f"alloc {mod} imports {','.join(used)} (allocate through mem.h)")
    return out


def sccs(nodes, edges):
    """Tarjan's algorithm; returns the components with more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def upward_includes(server):
    """include <file> <header>: a server file including an upper folder's header."""
    home = {}
    for folder in RANK:
        d = os.path.join(server, folder)
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.endswith(".h"):
                    home[f] = folder
    out = set()
    for folder in RANK:
        d = os.path.join(server, folder)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            # main.c is the executable's entry, above both tops: it picks
            # serve (ops) or deliver by the command line.
            if not f.endswith((".c", ".h")) or f"{folder}/{f}" == "ops/main.c":
                continue
            with open(os.path.join(d, f), encoding="utf-8") as fh:
                for line in fh:
                    m = INCLUDE.match(line)
                    if not m or m.group(1) not in home:
                        continue
                    h = home[m.group(1)]
                    if not may_call(folder, h):
                        out.add(f"include {folder}/{f} -> {h}/{m.group(1)}")
    return out


def main():
    build, src = sys.argv[1], sys.argv[2]
    objs = objects(build, src)
    if len(objs) < 10:
        print(f"found only {len(objs)} server objects under {build}: build first")
        return 1
    owner, calls = {}, {}
    for mod, path in objs.items():
        d, u = symbols(path)
        for s in d:
            owner[s] = mod
        calls[mod] = u
    edges = {m: {owner[s] for s in u if s in owner and owner[s] != m} for m, u in calls.items()}

    found = set()
    for a in sorted(edges):
        fa = a.split("/")[0]
        for b in sorted(edges[a]):
            fb = b.split("/")[0]
            if not may_call(fa, fb):
                found.add(f"up {a} -> {b}")
    for comp in sccs(edges.keys(), edges):
        if len(comp) > 2:
            found.add("loop " + " ".join(comp))
    server = os.path.join(src, "server")
    for folder in RANK:
        d = os.path.join(server, folder)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith((".c", ".h")):
                with open(os.path.join(d, f), encoding="utf-8") as fh:
                    n = sum(1 for _ in fh)
                if n > MAX_LINES:
                    found.add(f"long {folder}/{f}")
    for f in os.listdir(server):
        if f.endswith((".c", ".h")):
            found.add(f"outside-layers server/{f}")
    found |= upward_includes(server)
    found |= allocator_imports(build, src, objs)

    for v in sorted(found):
        print("violation:", v)
    print(f"{len(objs)} modules, {sum(len(e) for e in edges.values())} call edges, "
          f"{len(found)} violations")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
