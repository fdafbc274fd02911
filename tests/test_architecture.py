"""The package's shape is its architecture: subpackages in layers, imports pointing down only.

``LAYERS`` lists llmlab's subpackages from the bottom (runtime: load and run models) to the top
(cli: the ``llmlab`` command). A module may import from its own subpackage and from any layer
below it, never from a layer above (that would make a lower layer depend on an app built on it),
and modules never import each other in a cycle. The README's package map lists the same
subpackages in the same order, so the folder tree, the README and this test say one thing.

Also checked here: no module re-exports a name it imports (one import path per name), no module
imports another module's private (``_name``) names, and records are built with keywords.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "shared" / "llmlab"

LAYERS = (
    "runtime",  # load and run models on this machine
    "tokenization",  # text -> token ids
    "data",  # the bundled data sets, files read as text
    "search",  # embeddings, indexes, retrievers, chunking
    "decoding",  # the chat template, sampling, the generation loop, the KV cache
    "evaluation",  # metrics, confidence intervals, benchmark scoring
    "internals",  # attention and the transformer rebuilt from the weights
    "chat",  # one chat interface: the bundled model or an OpenAI-compatible server
    "training",  # LoRA, supervised fine-tuning, reward models, DPO
    "rag",  # answers from retrieved passages, with checked citations
    "tool_use",  # tools as data, the text protocol, constrained tool calls
    "agents",  # the loop, its patterns, memory
    "research",  # the research agent
    "serve",  # an OpenAI-compatible HTTP endpoint
    "views",  # pictures, widgets and pages of everything below
    "cli",  # the llmlab command
)


def modules() -> dict[str, Path]:
    """``{"llmlab.search.bm25": path, ...}`` for every module of the package."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """Every ``llmlab`` import of a module (top level or inside functions): (module, names, line)."""
    found = []
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmlab"):
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("llmlab")]
    return found


def target(module: str, names: list[str], known: dict[str, Path]) -> list[str]:
    """The modules an import statement reaches (``from llmlab.search import bm25`` -> the module)."""
    reached = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
    return reached or [module]


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None


def test_the_folder_tree_is_the_layer_list():
    subpackages = sorted(p.name for p in PKG.iterdir() if (p / "__init__.py").exists())
    assert subpackages == sorted(LAYERS)
    flat = sorted(p.name for p in PKG.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py"], "every module lives in a subpackage"


def readme_map() -> dict[str, set[str]]:
    """The README's package map (the first table after "Top layer first"): layer -> modules."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("Top layer first", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `(\w+)/` \|[^|]*\|([^|]*)\|", table, re.M)
    return {name: set(re.findall(r"`(\w+)`", modules)) for name, modules in rows}


def test_the_readme_map_lists_the_layers_in_order():
    assert list(readme_map()) == list(reversed(LAYERS)), "README's package map: top layer first"


def test_the_readme_map_lists_every_module_of_each_layer():
    for name, listed in readme_map().items():
        files = {p.stem for p in (PKG / name).glob("*.py") if p.stem != "__init__"}
        assert listed == files, (
            f"README's map row `{name}/`: add {files - listed}, drop {listed - files}"
        )


def test_imports_point_down_the_layers():
    known = modules()
    upward = []
    for name, path in known.items():
        here = layer(name)
        if here is None:
            continue
        for module, names, line in imports(path):
            for dep in target(module, names, known):
                there = layer(dep)
                if there is not None and LAYERS.index(there) > LAYERS.index(here):
                    upward.append(f"{path.relative_to(ROOT)}:{line} {here} -> {there} ({dep})")
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_no_import_cycles_between_modules():
    known = modules()
    graph = {
        name: {d for m, ns, _ in imports(path) for d in target(m, ns, known) if d in known} - {name}
        for name, path in known.items()
    }
    graph = {n: {d for d in deps if not d.endswith("__main__")} for n, deps in graph.items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def defined_names(path: Path) -> set[str]:
    """Names a module defines at top level (functions, classes, assignments)."""
    names = set()
    for node in tree(path).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def code_outside_the_package() -> dict[str, ast.Module]:
    """Tests, benchmarks, tools and every notebook's code cells, parsed."""
    out = {}
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        out[str(path.relative_to(ROOT))] = tree(path)
    for nb in sorted(ROOT.glob("phase-*/*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join(
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells
            if c["cell_type"] == "code"
        )
        code = "\n".join(
            line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        out[str(nb.relative_to(ROOT))] = ast.parse(code)
    return out


def llmlab_imports(module_tree: ast.Module) -> list[tuple[str, list[str], int]]:
    return [
        (node.module, [a.name for a in node.names], node.lineno)
        for node in ast.walk(module_tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmlab")
    ]


def test_every_name_has_one_import_path():
    """``from llmlab.x import name`` names the module that defines ``name``, never a re-export:
    in the package, its tests, the benchmarks and the notebooks."""
    known = modules()
    public_faces = {"llmlab"}  # the top-level package: load_lm, load_embedder, load_tokenizer
    sources = {str(p.relative_to(ROOT)): tree(p) for p in known.values()}
    sources.update(code_outside_the_package())
    wrong = []
    for where, module_tree in sources.items():
        for module, names, line in llmlab_imports(module_tree):
            if module not in known or module in public_faces:
                continue
            defined = defined_names(known[module])
            for n in names:
                if f"{module}.{n}" not in known and n not in defined and n != "*":
                    wrong.append(f"{where}:{line} imports {n} from {module}")
    assert not wrong, "names imported from a module that does not define them:\n" + "\n".join(wrong)


def test_no_private_names_cross_modules():
    wrong = [
        f"{path.relative_to(ROOT)}:{line} from {module} import {n}"
        for path in modules().values()
        for module, names, line in imports(path)
        for n in names
        if n.startswith("_")
    ]
    assert not wrong, "\n".join(wrong)


def test_no_formatter_exceptions():
    skips = [p.relative_to(ROOT) for p in PKG.rglob("*.py") if "fmt: skip" in p.read_text("utf-8")]
    assert not skips, f"'# fmt: skip' in {skips}: the code follows `ruff format`"


def records() -> set[str]:
    """Every record type of the package: a ``@dataclass`` or a ``NamedTuple``."""
    names = set()
    for path in PKG.rglob("*.py"):
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ClassDef) and (
                any(getattr(b, "id", None) == "NamedTuple" for b in node.bases)
                or any(
                    "dataclass"
                    in (getattr(d, "id", None), getattr(getattr(d, "func", None), "id", None))
                    for d in node.decorator_list
                )
            ):
                names.add(node.name)
    return names


def test_records_are_built_with_keywords():
    known, positional = records(), []
    assert {"AgentStep", "RunRecord", "Hit", "Passage", "ChatResult"} <= known
    files = [
        *PKG.rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "benchmarks").rglob("*.py"),
    ]
    for path in files:
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in known and node.args:
                positional.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}")
    assert not positional, f"records built by position: {positional}"
