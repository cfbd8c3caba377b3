#!/usr/bin/env python3
"""Lists import cycles between the modules of each crate under crates/ (issue 20: "None after this issue").

A module is a file under src/ (`a/mod.rs` and `a.rs` are module `a`; a file in `a/` is `a::b`, folded into its
top-level module `a`, since a module's own submodules may use each other through their parent). An edge A -> B is
a `use crate::B...` / `crate::B::` path in A. `lib.rs` and `main.rs` (the crate root) only declare and re-export,
so they are not nodes; a module that imports through a root re-export (`use crate::Name`) is reported, because
that hides an edge. Exit 1 if any cycle or root import is found.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)(::|\b)")
USE_GROUP = re.compile(r"use\s+crate::\{([^;]*)\};", re.S)


def modules(src):
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            parts = rel[:-3].split(os.sep)
            if parts in (["lib"], ["main"]):
                continue
            if parts[0] == "bin":
                continue
            mods.setdefault(parts[0], []).append(os.path.join(dirpath, f))
    return mods


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def edges(files, names):
    out, root_imports = set(), set()
    for path in files:
        text = strip_comments(open(path, encoding="utf-8").read())
        # Test modules may reach anywhere: they are not part of the module's dependencies.
        text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", text)[0]
        heads = [m.group(1) for m in PATH.finditer(text)]
        for g in USE_GROUP.finditer(text):
            heads += [h.strip().split("::")[0] for h in re.split(r",(?![^{]*\})", g.group(1)) if h.strip()]
        for h in heads:
            if h in names:
                out.add(h)
            elif h and h not in ("self",):
                root_imports.add(h)
    return out, root_imports


def cycles(graph):
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
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
                comps.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return comps


def main():
    bad = 0
    crates = sorted(os.listdir(os.path.join(ROOT, "crates")))
    for c in crates:
        src = os.path.join(ROOT, "crates", c, "src")
        if not os.path.isdir(src):
            continue
        mods = modules(src)
        graph = {}
        for m, files in mods.items():
            e, roots = edges(files, set(mods))
            e.discard(m)
            graph[m] = sorted(e)
            for r in sorted(roots):
                print(f"{c}: {m} imports `crate::{r}` through the crate root; import it from its module")
                bad += 1
        for comp in cycles(graph):
            print(f"{c}: import cycle among {', '.join(comp)}")
            bad += 1
    if bad:
        sys.exit(1)
    print("import-cycles: no cycles between modules")


if __name__ == "__main__":
    main()
