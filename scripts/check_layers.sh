#!/usr/bin/env bash
# check_layers.sh — every module of src/ uses only the modules below it.
#
# The order is docs/layers.txt (bottom to top). A file in src/<module>/ may
#   - include "<other>/..." only when <other> is listed before <module>;
#   - use (call, take the address of, declare) a function named mp_* or
#     mp__* only when <module> or a module below it defines a function of
#     that name. Definitions are found by a regular expression: the
#     non-static functions of each module's .c files and the static inline
#     functions of its .h files (function names made by token pasting in
#     macros are not seen).
# It also fails when src/ has a module folder missing from the list (or the
# list names a missing folder), and when the modules' uses, in any
# direction, form a circle (a module reaches itself through others).
#
# Output: one line per violation, "file:line: what", then a summary per
# pair of modules and the circles. Exit status 0 when clean, 1 otherwise.
# Usage: scripts/check_layers.sh [--graph]
#   --graph  print instead the module graph (each module and the modules it
#            uses, by include or by function) and exit 0.
# Needs python3 only (no build).
set -euo pipefail
cd "$(dirname "$0")/.."

exec python3 - "$@" <<'PY'
import os, re, sys

LAYERS = "docs/layers.txt"
graph_only = sys.argv[1:] == ["--graph"]
if sys.argv[1:] and not graph_only:
    sys.exit("usage: scripts/check_layers.sh [--graph]")

order = []
with open(LAYERS) as f:
    for n, line in enumerate(f, 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in order:
            sys.exit(f"{LAYERS}:{n}: bad or repeated module name '{name}'")
        order.append(name)
rank = {m: i for i, m in enumerate(order)}

problems = []  # (sort key, text)
folders = sorted(d for d in os.listdir("src") if os.path.isdir(os.path.join("src", d)))
for d in folders:
    if d not in rank:
        problems.append(((d,), f"src/{d}/: module folder not listed in {LAYERS}"))
for m in order:
    if m not in folders:
        problems.append(((m,), f"{LAYERS}: module '{m}' has no folder src/{m}/"))


def strip(text):
    """Comments and string/char literals blanked, newlines kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1 : j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


files = []  # (module, path, raw text, stripped text)
for m in order:
    for root, _, names in os.walk(os.path.join("src", m)):
        for name in sorted(names):
            if name.endswith((".c", ".h")):
                p = os.path.join(root, name)
                with open(p, encoding="utf-8", errors="replace") as f:
                    raw = f.read()
                files.append((m, p, raw, strip(raw)))

# Function definitions: a line that starts with a return type and a name
# mp_*( whose parameter list is followed by '{'.
DEF = re.compile(r"^([A-Za-z_][\w \t\*]*?[\s\*])?(mp_\w+)\s*\(", re.M)
defined = {}  # name -> set of modules
def_sites = set()  # (path, offset of the name) of each definition
for m, p, raw, code in files:
    for d in DEF.finditer(code):
        prefix = d.group(1) or ""
        if re.search(r"\b(typedef|extern|return|define)\b", prefix):
            continue
        is_static = re.search(r"\bstatic\b", prefix) is not None
        if p.endswith(".c") and is_static:
            continue
        if p.endswith(".h") and not (is_static and "inline" in prefix):
            continue
        depth, i = 1, d.end()
        while i < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        rest = code[i:].lstrip()
        if rest.startswith("{"):
            defined.setdefault(d.group(2), set()).add(m)
            def_sites.add((p, d.start(2)))

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"', re.M)
IDENT = re.compile(r"\bmp_\w+")
uses = {}  # (from, to) -> list of (path, line, what)


def lineno(text, pos):
    return text.count("\n", 0, pos) + 1


for m, p, raw, code in files:
    for inc in INCLUDE.finditer(code):
        # The stripped text blanks string literals; the raw text has the
        # same offsets.
        target = raw[inc.end() :].split('"', 1)[0]
        line = lineno(code, inc.start())
        if "/" not in target:
            continue  # a header of the same folder
        other = target.split("/", 1)[0]
        if other == "multiproc":
            continue  # the public API, include/multiproc/
        if other not in rank:
            problems.append(((p, line), f'{p}:{line}: #include "{target}": no module "{other}"'))
            continue
        if other != m:
            uses.setdefault((m, other), []).append((p, line, f'#include "{target}"'))
    code_wo_inc = code
    seen = set()
    for ident in IDENT.finditer(code):
        name = ident.group(0)
        owners = defined.get(name)
        if not owners or (p, ident.start()) in def_sites:
            continue
        line = lineno(code, ident.start())
        if (name, line) in seen:
            continue
        seen.add((name, line))
        # A name defined in this module and in a higher one (a stub here,
        # the real function there, chosen at build time) still depends on
        # the higher module in the builds that have it.
        above = sorted((o for o in owners if rank[o] > rank[m]), key=rank.get)
        below = sorted((o for o in owners if rank[o] < rank[m]), key=rank.get)
        where = ", ".join(sorted(owners, key=rank.get))
        if above:
            uses.setdefault((m, above[0]), []).append((p, line, f"{name}() (defined in {where})"))
        elif below and m not in owners:
            uses.setdefault((m, below[0]), []).append((p, line, f"{name}()"))

if graph_only:
    for m in order:
        inc = sorted({t for (f, t), ev in uses.items() if f == m
                      and any(w.startswith("#include") for _, _, w in ev)}, key=rank.get)
        fn = sorted({t for (f, t), ev in uses.items() if f == m
                     and any(not w.startswith("#include") for _, _, w in ev)}, key=rank.get)
        print(f"{m}: includes {' '.join(inc) or '-'}; calls {' '.join(fn) or '-'}")
    sys.exit(0)

upward = {k: v for k, v in uses.items() if rank[k[1]] > rank[k[0]]}
for (m, other), ev in upward.items():
    for p, line, what in ev:
        problems.append(((p, line), f"{p}:{line}: {m} -> {other} (higher): {what}"))

# Circles: strongly connected components of more than one module (Tarjan).
succ = {m: sorted({t for (f, t) in uses if f == m}, key=rank.get) for m in order}
index, low, stack, on, comps = {}, {}, [], set(), []


def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in succ[v]:
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
            comps.append(sorted(comp, key=rank.get))


for m in order:
    if m not in index:
        visit(m)

if problems or comps:
    print(f"check_layers: a file of src/<module>/ may include headers of, and use functions")
    print(f"defined in, only the modules listed before <module> in {LAYERS}.\n")
for line in [t for _, t in sorted(problems)]:
    print(line)
if upward:
    print("\nupward uses, by pair of modules (module -> higher module: count, first site):")
    for (m, other), ev in sorted(upward.items(), key=lambda kv: (rank[kv[0][0]], rank[kv[0][1]])):
        p, line, what = ev[0]
        print(f"  {m} -> {other}: {len(ev)}, first {p}:{line} {what}")
for comp in comps:
    members = set(comp)
    edges = [f"{a} -> {b}" for a in comp for b in succ[a] if b in members]
    print(f"\ncircle between modules {', '.join(comp)} (edges inside it: {'; '.join(edges)})")

bad = len(problems) + len(comps)
if bad:
    print(f"\ncheck_layers: FAILED: {len(problems)} violation(s), {len(comps)} circle(s) "
          f"(order: {LAYERS})")
    sys.exit(1)
print(f"check_layers: {len(files)} files in {len(order)} modules use only lower modules")
PY
