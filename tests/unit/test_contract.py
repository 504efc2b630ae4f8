"""Guard: every crossing name and port is defined once, in ansible/group_vars/all/contract.yml.

For each flat variable of the contract whose value is a plain literal (not a template), the code under
ansible/roles, producer, dags, spark and scripts must not define that value again. "Define" is kept
simple and precise (tests, *.md, comments and docstrings are never looked at):
  - YAML (*.yml, *.yaml, parsed): a scalar value equal to the literal, under any key, block or flow style
    (`kafka_port: 9092`, `{default: 9092}`; list items count under the list's key);
  - Python (*.py): the literal as a constant assigned (`X = ...`, `x: T = ...`), as a parameter's default,
    as a keyword argument (`default=...`, `port=...`), as a dict value, or as the fallback of `.get(key,
    fallback)`/`getenv` (also inside `a or b` / `a if c else b` there);
  - shell (*.sh): an assignment `NAME=value` or a default `${NAME:-value}` with the literal;
  - and for the ports, an address `:<port>` inside any YAML value, Python string or shell line.
Each finding is named (the YAML key, the Python target/parameter/keyword/dict key/.get key, the shell
variable; "string"/"line" for addresses) so the few coincidences are allowed precisely, by (file, name),
in ALLOWED. Roles reference the contract variable instead (`kafka_port: "{{ correnteza_port_kafka }}"`);
Python gets the value from what Ansible renders (Airflow Connections/Variables, the stream's settings
file); scripts from .state/contract.json through scripts/correnteza_ops.py.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "ansible" / "group_vars" / "all" / "contract.yml"
SCANNED = ("ansible/roles", "producer", "dags", "spark", "scripts")
DAG_FILE = ROOT / "dags" / "user_ingestion.py"
OPS_FILE = ROOT / "scripts" / "correnteza_ops.py"

# (file, name) of definitions allowed to hold a contract literal, with the reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("producer/dag_support.py", "SETTINGS_VARIABLE"): "the DAG must know the Variable it reads the rest from",
    ("ansible/roles/airflow/defaults/main.yml", "airflow_user"): "the OS account, not the database role",
    ("scripts/hosts.sh", "CORRENTEZA_PROJECT"): "the deployment's name, not the Cassandra role",
    ("scripts/pipeline.py", "SEED"): "a default seed word, not the Cassandra role",
    ("ansible/roles/postgresql/defaults/main.yml", "client_groups"): "inventory groups, not database roles",
    ("ansible/roles/registry/meta/argument_specs.yml", "choices"): "the levels the registry accepts",
}

SHELL_ASSIGN = re.compile(
    r"^\s*(?:export\s+|local\s+|readonly\s+|declare\s+(?:-\w+\s+)?)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)="
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s;#]*)"
)
SHELL_DEFAULT = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?[-=](?P<value>[^}]*)\}")

Found = tuple[int, str, str]  # (line, name, value)


def contract_literals() -> dict[str, list[str]]:
    """{literal value: [contract variables]} for the flat, non-template variables."""
    document = yaml.safe_load(CONTRACT.read_text())
    literals: dict[str, list[str]] = defaultdict(list)
    for name, value in document.items():
        if isinstance(value, (dict, list, bool)) or value is None:
            continue
        text = str(value)
        if "{{" in text or "{%" in text:
            continue
        literals[text].append(name)
    return dict(literals)


def scanned_files() -> list[Path]:
    """Tracked and new (not ignored) files under SCANNED: what the next commit would hold."""
    out = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            *SCANNED,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = sorted({ROOT / name for name in out.split("\0") if name})
    return [p for p in paths if p.is_file() and p.suffix in (".yml", ".yaml", ".py", ".sh")]


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _yaml_scalars(node: yaml.Node, name: str) -> Iterator[Found]:
    if isinstance(node, yaml.ScalarNode):
        yield node.start_mark.line + 1, name, node.value
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _yaml_scalars(value, key.value if isinstance(key, yaml.ScalarNode) else name)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _yaml_scalars(item, name)


def yaml_values(text: str) -> list[Found]:
    """(line, key, value) of every scalar value of a mapping (block or flow style; list items take the
    list's key). Comments are not values."""
    return [
        found
        for document in yaml.compose_all(text, Loader=yaml.SafeLoader)
        if document is not None
        for found in _yaml_scalars(document, "")
    ]


def shell_values(text: str) -> list[Found]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split(" #", 1)[0]
        if code.lstrip().startswith("#"):
            continue
        match = SHELL_ASSIGN.match(code)
        if match:
            found.append((number, match["name"], unquote(match["value"])))
        found.extend((number, m["name"], unquote(m["value"])) for m in SHELL_DEFAULT.finditer(code))
    return found


def _constants(node: ast.expr | None) -> Iterator[ast.Constant]:
    """node if it is a plain constant, or the constants of `a or b` / `a if c else b` (fallbacks)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, int, float)) and not isinstance(node.value, bool):
            yield node
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _constants(value)
    elif isinstance(node, ast.IfExp):
        yield from _constants(node.body)
        yield from _constants(node.orelse)


def _target_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ast.unparse(node)


def _definitions(tree: ast.AST) -> Iterator[tuple[str, ast.expr | None]]:
    """(name, value expression) of every definition position of a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield _target_name(target), node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            yield _target_name(node.target), node.value
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            positional = [*node.args.posonlyargs, *node.args.args]
            for arg, default in zip(
                positional[len(positional) - len(node.args.defaults) :], node.args.defaults, strict=True
            ):
                yield arg.arg, default
            for arg, default in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True):
                yield arg.arg, default
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                yield keyword.arg or "**", keyword.value
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("get", "getenv", "setdefault") and len(node.args) >= 2:
                key = node.args[0]
                yield (str(key.value) if isinstance(key, ast.Constant) else ast.unparse(key)), node.args[1]
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None:
                    yield (str(key.value) if isinstance(key, ast.Constant) else ast.unparse(key)), value


def python_values(text: str) -> list[Found]:
    found = []
    for name, value in _definitions(ast.parse(text)):
        found.extend((constant.lineno, name, str(constant.value)) for constant in _constants(value))
    return sorted(found)


def python_strings(text: str) -> list[Found]:
    """Every string constant but docstrings (f-string parts included), for addresses with a port."""
    tree = ast.parse(text)
    bare = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [
        (node.lineno, "string", node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in bare
    ]


def shell_lines(text: str) -> list[Found]:
    return [
        (number, "line", line)
        for number, line in enumerate(text.splitlines(), start=1)
        if not line.lstrip().startswith("#")
    ]


def scan(path: Path) -> tuple[list[Found], list[Found]]:
    """(definitions: values to compare with the literals, texts: where an address may carry a port)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix in (".yml", ".yaml"):
        values = yaml_values(text)
        return values, values
    if path.suffix == ".sh":
        return shell_values(text), shell_lines(text)
    return python_values(text), python_strings(text)


def duplicates() -> list[str]:
    literals = contract_literals()
    ports = {value for value in literals if value.isdigit()}
    in_address = re.compile(r":(" + "|".join(sorted(ports)) + r")(?!\d)")
    found: list[tuple[str, int, str]] = []
    for path in scanned_files():
        relative = str(path.relative_to(ROOT))
        try:
            definitions, texts = scan(path)
        except (yaml.YAMLError, SyntaxError) as error:
            found.append((relative, 0, f"cannot be parsed, so not checked: {str(error).splitlines()[0]}"))
            continue
        for number, name, value in definitions:
            if value in literals and (relative, name) not in ALLOWED:
                found.append(
                    (relative, number, f"{name} = {value!r} (contract: {' / '.join(literals[value])})")
                )
        for number, name, value in texts:
            for match in in_address.finditer(value):
                if (relative, name) not in ALLOWED:
                    contract = " / ".join(literals[match[1]])
                    found.append((relative, number, f"{name} has port {match[0]!r} (contract: {contract})"))
    return [f"{file}:{line}: {what}" for file, line, what in sorted(set(found))]


def test_the_contract_has_literals() -> None:
    literals = contract_literals()
    for value in ("9092", "9042", "2181", "5432", "users_created", "spark_streams", "dc1"):
        assert value in literals, value


def test_the_rules_find_definitions() -> None:
    """The matchers see definitions (and not comments, docstrings, call arguments or longer strings)."""
    text = (
        "a:\n  kafka_port: 9092  # c\n  # port: 9092\n  spec: {type: int, default: 2181}\n"
        "  l:\n    - 'users_created'\n"
    )
    assert yaml_values(text) == [
        (2, "kafka_port", "9092"),
        (4, "type", "int"),
        (4, "default", "2181"),
        (6, "l", "users_created"),
    ]
    assert shell_values('PORT=9092\nexport T="users_created"\n# X=1\necho ${P:-9042} # Y=2\n') == [
        (1, "PORT", "9092"),
        (2, "T", "users_created"),
        (4, "P", "9042"),
    ]
    code = (
        '"""users_created"""\nTOPIC = "users_created"\n'
        "def f(port=9092, *, dc='dc1'):\n    return f'x:{port}'\n"
        'connect(port=conn.port or 5432, tags=["spark_streams"])\n'
        'os.environ.get("KS", "spark_streams")\nfirst("spark_streams")\n'
        'D = {"table": "created_users"}\n'
    )
    assert python_values(code) == [
        (2, "TOPIC", "users_created"),
        (3, "dc", "dc1"),
        (3, "port", "9092"),
        (5, "port", "5432"),
        (6, "KS", "spark_streams"),
        (8, "table", "created_users"),
    ]
    assert python_strings('"""doc :9092"""\nx = f"{h}:9092"\n') == [(2, "string", ":9092")]


def test_crossing_literals_are_defined_once() -> None:
    found = duplicates()
    assert not found, (
        f"{len(found)} second definition(s) of contract values (reference the contract variable instead):\n"
        + "\n".join(found)
    )


def module_constant(path: Path, name: str) -> str:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        named = any(isinstance(target, ast.Name) and target.id == name for target in targets)
        if named and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node.value.value
    pytest.fail(f"{path.relative_to(ROOT)} has no module-level string constant {name}")


def dag_id_of(path: Path) -> str:
    """The dag_id= of the @dag decorator (a string, or a module constant's name)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "dag":
                    for keyword in decorator.keywords:
                        if keyword.arg == "dag_id":
                            if isinstance(keyword.value, ast.Constant):
                                return str(keyword.value.value)
                            if isinstance(keyword.value, ast.Name):
                                return module_constant(path, keyword.value.id)
    pytest.fail(f"{path.relative_to(ROOT)}: no @dag(dag_id=...)")


def test_the_dag_id_is_the_one_the_ops_client_triggers() -> None:
    assert OPS_FILE.is_file(), f"{OPS_FILE.relative_to(ROOT)} is missing (the ops client defines DAG_ID)"
    assert dag_id_of(DAG_FILE) == module_constant(OPS_FILE, "DAG_ID")
