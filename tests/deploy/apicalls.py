"""Derive, from the source, every Kubernetes API request the operator and the agent can make.

No hand-kept list: the official client's own code says, for each API method, its HTTP
method and URL template (`_<method>_serialize`: method=..., resource_path=...), which map
mechanically to RBAC terms (verb, API group, resource, subresource). The product's source
is scanned with `ast` for every use of such a method: a call, or a reference handed to
`functools.partial` / `watch.Watch().stream` (which lists and then watches). What cannot be
mapped - an unknown method on a client API object, a custom-object call whose group or
plural is not a constant, raw `call_api`, the dynamic client - is reported as a problem, so
a new call cannot slip past the RBAC test.

Which code runs in which component follows the imports: a component is its packages plus
every `kubeos` module they import, transitively (plugins run inside the agent).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_SERIALIZE = re.compile(r"def _(\w+)_serialize\(")
_REQUEST = re.compile(r"method='(\w+)',\s*resource_path='([^']+)'")
_CUSTOM_ARGS = {  # positional parameters of CustomObjectsApi methods before the rest
    "namespaced": ("group", "version", "namespace", "plural"),
    "cluster": ("group", "version", "plural"),
}


@dataclass(frozen=True)
class Endpoint:
    api_class: str
    http_method: str
    path: str  # e.g. /api/v1/namespaces/{namespace}/pods/{name}/eviction


@dataclass(frozen=True, order=True)
class Request:
    """One API request in RBAC terms."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespaced: bool = False  # False: cluster-scoped or across all namespaces

    @property
    def resource_name(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        where = "namespaced" if self.namespaced else "cluster-wide"
        return f"{self.verb} {self.group or 'core'}/{self.resource_name} ({where})"


@dataclass(frozen=True)
class Use:
    file: Path
    line: int
    method: str
    requests: tuple[Request, ...]


_CLASS = re.compile(r"^class (\w+Api)\b", re.M)


@cache
def _client_sources() -> dict[str, str]:
    """API class name -> source of its generated module (read, not imported: importing
    all 66 modules of the client takes many seconds)."""
    package = Path(importlib.util.find_spec("kubernetes.client.api").origin).parent
    sources: dict[str, str] = {}
    for path in sorted(package.glob("*_api.py")):
        text = path.read_text()
        for m in _CLASS.finditer(text):
            sources[m.group(1)] = text
    return sources


@cache
def catalogue() -> dict[str, frozenset[Endpoint]]:
    """API method name -> the endpoints of the client classes that have it."""
    table: dict[str, set[Endpoint]] = {}
    for name, source in _client_sources().items():
        for m in _SERIALIZE.finditer(source):
            request = _REQUEST.search(source, m.end())
            assert request is not None, f"{name}.{m.group(1)}: no request in the client code"
            endpoint = Endpoint(name, request.group(1), request.group(2))
            table.setdefault(m.group(1), set()).add(endpoint)
    return {k: frozenset(v) for k, v in table.items()}


def api_classes() -> frozenset[str]:
    return frozenset(_client_sources())


def to_requests(
    ep: Endpoint, watched: bool, group: str | None = None, plural: str | None = None
) -> list[Request]:
    """RBAC terms of one endpoint; `group`/`plural` fill the custom-object placeholders."""
    parts = [p for p in ep.path.strip("/").split("/") if p]
    if parts[0] == "api":  # /api/v1/...
        api_group, rest = "", parts[2:]
    else:  # /apis/{group}/{version}/...
        api_group, rest = parts[1], parts[3:]
    if api_group == "{group}":
        if group is None:
            raise ValueError("group unresolved")
        api_group = group
    namespaced = rest[:2] == ["namespaces", "{namespace}"]
    if namespaced:
        rest = rest[2:]
    if not rest:
        raise ValueError(f"no resource in {ep.path}")
    resource = rest[0]
    if resource == "{plural}":
        if plural is None:
            raise ValueError("plural unresolved")
        resource = plural
    has_name = len(rest) >= 2 and rest[1] == "{name}"
    subresource = rest[2] if has_name and len(rest) == 3 else ""
    if len(rest) > 3 or (len(rest) == 2 and not has_name) or resource.startswith("{"):
        raise ValueError(f"cannot map {ep.path}")
    verbs = {
        ("GET", True): ["get"],
        ("GET", False): ["list", "watch"] if watched else ["list"],
        ("POST", False): ["create"],
        ("POST", True): ["create"],  # subresources such as pods/eviction
        ("PUT", True): ["update"],
        ("PATCH", True): ["patch"],
        ("DELETE", True): ["delete"],
        ("DELETE", False): ["deletecollection"],
    }[(ep.http_method, has_name)]
    return [Request(v, api_group, resource, subresource, namespaced) for v in verbs]


# -- which files make up a component ---------------------------------------------------------


def module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).resolve()


def _imports(tree: ast.AST, package: str) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"  # `from pkg import module`


def module_name(path: Path) -> str:
    rel = path.resolve()
    for root in [REPO, *sorted((REPO / "plugins").glob("*"))]:
        if rel.is_relative_to(root):
            dotted = rel.relative_to(root).with_suffix("").parts
            if dotted[-1] == "__init__":
                dotted = dotted[:-1]
            return ".".join(dotted)
    raise ValueError(path)


def closure(roots: Iterable[Path], own_prefixes: tuple[str, ...]) -> set[Path]:
    """The files of `roots` and every own module they import, transitively."""
    todo = [p.resolve() for p in roots]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imports(ast.parse(path.read_text()), package):
            if not imported.startswith(own_prefixes):
                continue
            for candidate in (imported, imported.rpartition(".")[0]):
                found = module_file(candidate) if candidate else None
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


# -- finding the uses ------------------------------------------------------------------------


def _api_class(value: ast.AST | None) -> str | None:
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in api_classes():
            return name
    return None


def receivers(tree: ast.AST) -> dict[str, str]:
    """Expressions bound to client API objects: {"self.core": "CoreV1Api", ...}.

    Collected over the whole module first: `__init__` may come after the methods using it.
    """
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        pairs: list[tuple[ast.AST, ast.AST | None]] = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs += list(zip(target.elts, node.value.elts, strict=False))
                else:
                    pairs.append((target, node.value))
        elif isinstance(node, ast.AnnAssign):
            pairs.append((node.target, node.value))
        for target, value in pairs:
            cls = _api_class(value)
            if cls is not None:
                found[ast.unparse(target)] = cls
    return found


class _Scanner(ast.NodeVisitor):
    """Finds API method uses in one module and resolves their RBAC requests."""

    def __init__(
        self, path: Path, module_globals: dict[str, object], bound: dict[str, str]
    ) -> None:
        self.path = path
        self.globals = module_globals
        self.receivers = bound  # "self.core" -> "CoreV1Api"
        self.uses: list[Use] = []
        self.problems: list[str] = []
        self._handled: set[int] = set()

    def _where(self, node: ast.AST) -> str:
        return f"{_shown(self.path)}:{getattr(node, 'lineno', '?')}"

    def _const(self, node: ast.AST | None) -> str | None:
        """A string constant, or a module-level name/attribute holding one."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute):
            try:
                value = eval(compile(ast.Expression(node), "<arg>", "eval"), dict(self.globals))
            except Exception:
                return None
            return value if isinstance(value, str) else None
        return None

    def _custom_target(
        self, method: str, args: list[ast.AST], keywords: list[ast.keyword]
    ) -> tuple[str | None, str | None]:
        kind = "cluster" if "_cluster_" in method else "namespaced"
        names = _CUSTOM_ARGS[kind]
        bound: dict[str, ast.AST] = dict(zip(names, args, strict=False))
        bound.update({k.arg: k.value for k in keywords if k.arg in names})
        return self._const(bound.get("group")), self._const(bound.get("plural"))

    def _record(
        self,
        node: ast.Attribute,
        args: list[ast.AST],
        keywords: list[ast.keyword],
        watched: bool,
    ) -> None:
        method = node.attr
        receiver = ast.unparse(node.value)
        cls = self.receivers.get(receiver)
        endpoints = catalogue()[method]
        if cls is not None:
            endpoints = frozenset(e for e in endpoints if e.api_class == cls)
        if not endpoints:
            self.problems.append(f"{self._where(node)}: {cls} has no API method {method}")
            return
        group = plural = None
        if any("{plural}" in e.path for e in endpoints):
            group, plural = self._custom_target(method, args, keywords)
            if group is None or plural is None:
                self.problems.append(
                    f"{self._where(node)}: {method}: group/plural must be constants"
                    " (module-level names) so the RBAC test can tell which resource it is"
                )
                return
        requests: set[Request] = set()
        for ep in endpoints:
            try:
                requests.update(to_requests(ep, watched, group, plural))
            except ValueError as exc:
                self.problems.append(f"{self._where(node)}: {method}: {exc}")
                return
        kinds = {(r.group, r.resource, r.subresource) for r in requests}
        if len(kinds) > 1:
            self.problems.append(
                f"{self._where(node)}: {method} on {receiver!r} is ambiguous ({sorted(kinds)});"
                " assign the API object from client.<Api>(...) so its class is known"
            )
            return
        self.uses.append(Use(self.path, node.lineno, method, tuple(sorted(requests))))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in catalogue():
            watched = any(
                k.arg == "watch" and isinstance(k.value, ast.Constant) and k.value.value
                for k in node.keywords
            )
            self._record(func, list(node.args), node.keywords, watched)
            self._handled.add(id(func))
        elif isinstance(func, ast.Attribute) and func.attr == "call_api" and not _is_super(func):
            # super().call_api(...) in an ApiClient subclass only forwards the calls that
            # the generated API methods make, and those are mapped where they are made.
            self.problems.append(f"{self._where(node)}: raw call_api cannot be mapped to RBAC")
        # A method handed over to be called later (functools.partial, Watch().stream):
        # the remaining arguments are its arguments; an informer lists, then watches.
        if node.args and isinstance(node.args[0], ast.Attribute):
            ref = node.args[0]
            if ref.attr in catalogue() and id(ref) not in self._handled:
                self._record(ref, list(node.args[1:]), node.keywords, watched=True)
                self._handled.add(id(ref))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if id(node) not in self._handled:
            receiver = ast.unparse(node.value)
            if node.attr in catalogue() and (
                receiver in self.receivers or isinstance(node.ctx, ast.Load)
            ):
                # Any other reference (stored, returned, passed by keyword): assume the
                # worst, that it is called later as an informer would.
                self._record(node, [], [], watched=True)
                self._handled.add(id(node))
            elif receiver in self.receivers and not node.attr.startswith("_"):
                cls = self.receivers[receiver]
                if node.attr not in {"api_client", "close"}:
                    self.problems.append(
                        f"{self._where(node)}: {cls}.{node.attr} is not a known API method"
                    )
        self.generic_visit(node)


def module_globals(path: Path) -> dict[str, object]:
    """The module's namespace (to read its constants); empty for a file outside the tree."""
    try:
        return vars(importlib.import_module(module_name(path)))
    except ValueError:
        return {}


def scan(files: Iterable[Path]) -> tuple[list[Use], list[str]]:
    """Every API use in `files`, and everything that could not be mapped."""
    uses: list[Use] = []
    problems: list[str] = []
    for path in sorted(files):
        # Every file, even one that never mentions kubernetes: an API object can be
        # handed to it as an argument.
        source = path.read_text()
        tree = ast.parse(source)
        if re.search(r"\bkubernetes\.dynamic\b|from kubernetes import dynamic", source):
            problems.append(f"{_shown(path)}: the dynamic client cannot be mapped")
        scanner = _Scanner(path, module_globals(path), receivers(tree))
        scanner.visit(tree)
        uses += scanner.uses
        problems += scanner.problems
    return uses, problems


def _is_super(func: ast.Attribute) -> bool:
    """`super().<attr>`: a subclass forwarding to the client's own method."""
    value = func.value
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
    )
