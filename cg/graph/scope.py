"""What a document can call: its functions and those of its imports (Scope), each read and checked
(Function), and the ops a node of one file can name (ScopeOps). Records and small helpers only:
cg/graph/functions.py reads `functions:`, cg/graph/imports.py reads `imports:`, and both fill a Scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cg.errors import Diagnostic, Pos, did_you_mean
from cg.graph.folders import Folders
from cg.graph.ir import CallOp, Node
from cg.ops import REGISTRY, Op
from cg.parse.document import Document, YamlPath


def at(file: str, pos: Pos | None) -> str:
    return f"{file}:{pos.line}:{pos.col}" if pos else file


def is_library(data: Any) -> bool:
    """A file of functions only: it has `functions` and no nodes or outputs."""
    return isinstance(data, dict) and "functions" in data and "nodes" not in data and "outputs" not in data


class Within(Document):
    """A part of a document (or a view of it with other data) seen as a document of its own:
    paths are relative to `prefix`, so the messages written for a graph's nodes serve a
    function's nodes, at their real places. Positions are asked of the document itself."""

    def __init__(self, doc: Document, prefix: YamlPath, data: Any) -> None:
        super().__init__(data, doc.file)
        self.base, self.prefix = doc, prefix

    def pos(self, path: YamlPath, *, key: bool = False) -> Pos | None:
        return self.base.pos((*self.prefix, *path), key=key)


def inputs_text(params: tuple[str, ...]) -> str:
    return f"{len(params)} input{'s' * (len(params) != 1)}" + (f" ({', '.join(params)})" if params else "")


@dataclass
class Function:
    name: str
    doc: Document  # the file it is defined in
    spec: dict[str, Any]  # the definition as read
    params: tuple[str, ...]
    output: str
    well_formed: bool = True  # its keys have the right types (else the schema reports it)
    broken_nodes: set[Any] = field(default_factory=set)  # nodes of its body with a schema problem
    op: CallOp | None = None  # what a call's node refers to
    body: tuple[Node, ...] = ()  # topological order; a call is a node whose op is a CallOp
    ok: bool = True  # no problem in it or in a function it calls: calls of it are inlined
    size: int = 0  # nodes once every call inside is inlined
    text: str = ""  # an expression node's text (cg/graph/expr_nodes.py): then `name` is the node's id

    @property
    def uid(self) -> str:
        return f"{self.doc.file}\0{self.name}"

    @property
    def where(self) -> str:
        return at(self.doc.file, self.doc.pos(("functions", self.name), key=True))


class ScopeOps(Mapping[str, Op]):
    """The ops a node of one file can name: the built-ins, then the functions it sees that have
    an op. A live view, made once per file: rebuilding a merged dict for every function body
    cost the number of functions each time (10,000 functions took 20 s to validate)."""

    def __init__(self, functions: Mapping[str, Function]) -> None:
        self.functions = functions  # name -> function, as Scope.visible holds them for the file

    def __getitem__(self, name: str) -> Op:
        op = REGISTRY.get(name)
        if op is None:
            fn = self.functions.get(name)
            op = None if fn is None else fn.op
        if op is None:
            raise KeyError(name)
        return op

    def __iter__(self) -> Iterator[str]:
        yield from REGISTRY
        yield from (name for name, fn in self.functions.items() if fn.op is not None and name not in REGISTRY)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class Scope:
    """The functions a document can call, read and checked: its own and its imports'."""

    main: Document
    diags: list[Diagnostic] = field(default_factory=list)  # every problem found here
    schema_diags: list[Diagnostic] = field(default_factory=list)  # the main document's schema problems
    files: dict[str, Document] = field(default_factory=dict)  # display path -> document, main first
    imports: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # file -> (entry, imported file)
    functions: dict[str, Function] = field(default_factory=dict)  # by uid
    visible: dict[str, dict[str, Function]] = field(default_factory=dict)  # file -> name -> function
    by_op: dict[int, Function] = field(default_factory=dict)  # id(CallOp) -> its function
    _ops: dict[str, ScopeOps] = field(default_factory=dict)  # file -> the view ops() gives
    hints_left: int = 20  # ' (did you mean ...?)' for the first few unknown names only, as graph._Suggest
    failed: set[str] = field(default_factory=set)  # files with an import that failed (reported there)
    allow_paths: tuple[str, ...] | None = None  # folders besides the main file's (None: the CLI's, CG_ALLOW_PATH)
    _folders: Folders | None = field(default=None, init=False, repr=False)

    @property
    def folders(self) -> Folders:
        """Where imports and input files may be read from (worked out when a file first needs it)."""
        if self._folders is None:
            self._folders = Folders.of(self.main.file, self.allow_paths)
        return self._folders

    @property
    def library(self) -> bool:
        return is_library(self.main.data)

    def ops(self, file: str | None = None) -> Mapping[str, Op]:
        """The ops a node of `file` (default: the main file) can name: built-ins and functions
        (those whose op is made so far: the view is live)."""
        file = self.main.file if file is None else file
        vis = self.visible.get(file)
        if not vis:
            return REGISTRY
        view = self._ops.get(file)
        if view is None or view.functions is not vis:
            view = self._ops[file] = ScopeOps(vis)
        return view

    def hint(self, name: str, names: Callable[[], list[str]]) -> str:
        """' (did you mean ...?)' for one of the first unknown names: difflib looks at every name,
        and a file with thousands of functions and typos must still validate fast."""
        if self.hints_left <= 0 or len(name) > 100:
            return ""
        self.hints_left -= 1
        return did_you_mean(name, names())

    def function(self, op: Op) -> Function | None:
        return self.by_op.get(id(op)) if isinstance(op, CallOp) else None

    def error(self, doc: Document, code: str, message: str, path: YamlPath, node: str | None = None,
              *, key: bool = False) -> None:
        self.diags.append(Diagnostic(code, message, doc.file, doc.pos(path, key=key), node))
