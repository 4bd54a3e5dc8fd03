"""The import graph of the coordconv_data package (module level and function level) and its cycles.

    python docs/imports.py .        # modules, edges, cycles
    python docs/imports.py . -v     # and each module's imports
"""
import ast, sys
from pathlib import Path
root = Path(sys.argv[1]) / "coordconv_data"
mods = {}
for p in sorted(root.rglob("*.py")):
    rel = p.relative_to(root.parent).with_suffix("")
    name = ".".join(rel.parts)
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    mods[name] = p
def resolve(mod, node):
    base = mod.split(".")
    if mods[mod].name != "__init__.py":
        base = base[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return target
edges = {m: set() for m in mods}
for m, p in mods.items():
    for node in ast.walk(ast.parse(p.read_text())):
        if isinstance(node, ast.ImportFrom):
            t = resolve(m, node)
            cands = [t] + [f"{t}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        for c in cands:
            while c and c not in mods:
                c = c.rpartition(".")[0]
            if c and c != m and c.startswith("coordconv_data") and c != "coordconv_data":
                edges[m].add(c)
# cycles (ignoring package __init__ re-exports edges from a package to its own children)
def is_parent(a, b): return b.startswith(a + ".")
g = {m: {t for t in ts if not is_parent(m, t)} for m, ts in edges.items()}
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in g[v]:
        if w not in index: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in g:
    if v not in index: sc(v)
short = lambda m: m.replace("coordconv_data.", "")
print(f"modules {len(mods)}, edges {sum(len(v) for v in g.values())}, cycles {len(sccs)}")
for c in sccs: print("  cycle:", " ".join(map(short, c)))
if "-v" in sys.argv:
    for m in sorted(g):
        print(f"{short(m):28s} -> {' '.join(sorted(map(short, g[m])))}")
