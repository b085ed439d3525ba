"""The deployment files in deploy/ against the code they run.

Docker and Kubernetes are not available where the tests run, so these checks are static: every
command the files name parses with the installed program's own command line (Click), every module
and file they name exists, every ODDLY_* variable is a field of `Settings` and the server-mode ones
are all passed, every other variable is one its program reads, ports agree between a service, its
healthcheck, its published ports and whoever connects to it, and the Helm values say what
compose.yaml says. Each checker returns its problems as sentences; the mutation tests at the end
show that each kind of problem is reported.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import functools
import importlib
import importlib.metadata
import importlib.util
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from oddly.cli import COMMANDS
from oddly.config import Settings, load_config
from oddly.dagster_home import dagster_instance_config as demo_instance_config
from oddly.demo import SENSOR_TIMEOUT_SECONDS
from oddly.feeds.registry import available_agents

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
HELM = DEPLOY / "helm"

SETTINGS_VARIABLES = frozenset(
    Settings.model_config["env_prefix"] + name.upper() for name in Settings.model_fields
)


# Server mode (ARCHITECTURE.md, "Two storage modes"): the stores that leave ODDLY_HOME for
# PostgreSQL, and the home itself, which still holds dbt's target, MLflow's artifacts and the rules
# the app saves. Every process running Oddly's code gets all four.
SERVER_MODE_VARIABLES = frozenset(
    {"ODDLY_HOME", "ODDLY_WAREHOUSE_URL", "ODDLY_APP_DATABASE_URL", "ODDLY_MLFLOW_TRACKING_URI"}
)
# Dagster's own variables the files may pass, each with the file of the installed dagster that
# reads it (checked below, so a rename in Dagster shows here).
DAGSTER_VARIABLES = {
    # the instance's folder, where dagster.yaml is read (DagsterInstance.get)
    "DAGSTER_HOME": "_core/instance/factory.py",
    # how long the daemon (and the code server's proxy) waits for one sensor evaluation
    "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS": "_grpc/utils.py",
}
# What the postgres image's entrypoint reads to create its role and first database.
POSTGRES_IMAGE_VARIABLES = frozenset({"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"})
# Programs whose processes import Oddly's code (and so read Settings).
ODDLY_PROGRAMS = (("oddly",), ("streamlit", "run"), ("dagster", "code-server", "start"))
# ... but these touch no store: the market simulator and the fake Bot API.
STORELESS_COMMANDS = (("oddly", "simulate"), ("oddly", "fake-telegram"))
DAGSTER_PROGRAMS = ("dagster", "dagster-webserver", "dagster-daemon")
TELEGRAM_COMMANDS = (("oddly", "send"), ("oddly", "bot"))
# Files the image must contain for the code to find them next to its packages (REPO_ROOT).
IMAGE_NEEDS = (
    "pyproject.toml",
    "README.md",
    "oddly/config.py",
    "orchestration/definitions.py",
    "ml/tracking.py",
    "dashboards/app.py",
    "benchmarks/cli.py",
    "dbt_project/dbt_project.yml",
    "config/rules.yaml",
    "oddly.yaml",
)


# ---------------------------------------------------------------------------------------------
# reading the files


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.lstrip().startswith("#")}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    text: str

    def exec_form(self) -> list[str]:
        value = yaml.safe_load(self.text)
        assert isinstance(value, list), f"{self.keyword} {self.text!r} is not in exec form"
        return [str(v) for v in value]


def read_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with their continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [Instruction(*[*text.strip().split(None, 1), ""][:2]) for text in logical]


def dockerfile_env(instructions: Iterable[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            env.update(pair.split("=", 1) for pair in ins.text.split())
    return env


def owned_paths(instructions: Iterable[Instruction]) -> set[str]:
    """Folders the image creates and hands to its user (`chown -R user:group …`)."""
    owned = set()
    for ins in instructions:
        for chown in re.findall(r"chown -R \S+((?:\s+[\w/.-]+)+)", ins.text):
            owned |= {path if path.startswith("/") else f"/app/{path}" for path in chown.split()}
    return owned


def image_uid(instructions: Iterable[Instruction]) -> int | None:
    found = [int(uid) for ins in instructions for uid in re.findall(r"useradd .*--uid (\d+)", ins.text)]
    return found[0] if found else None


def manifest_command() -> str:
    """The command `make manifest` runs, without the virtualenv's path."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(MANIFEST):"))
    return lines[start + 1].strip().removeprefix("$(BIN)/")


def instance_env_references(config: Any) -> set[str]:
    """The variables a dagster.yaml reads (`{env: NAME}` anywhere in it)."""
    if isinstance(config, dict):
        if set(config) == {"env"}:
            return {config["env"]}
        return set().union(*(instance_env_references(v) for v in config.values()))
    if isinstance(config, list):
        return set().union(*(instance_env_references(v) for v in config))
    return set()


def init_script_databases() -> set[str]:
    sql = (DEPLOY / "postgres-init.sql").read_text()
    return set(re.findall(r"^\s*CREATE DATABASE\s+(\w+)", sql, flags=re.IGNORECASE | re.MULTILINE))


# ---------------------------------------------------------------------------------------------
# commands: parsed by the installed programs' own Click command lines


class CommandError(Exception):
    pass


def click_command(program: str) -> click.Command:
    """The Click command behind an installed console script (or its module's `cli` group when the
    script is a plain function that calls it)."""
    entries = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == program]
    if not entries:
        raise CommandError(f"no installed program {program!r}")
    target = entries[0].load()
    if isinstance(target, click.Command):
        return target
    group = getattr(importlib.import_module(entries[0].module), "cli", None)
    if not isinstance(group, click.Command):
        raise CommandError(f"{program!r} is not a Click program")
    return group


@dataclass
class Parsed:
    words: tuple[str, ...]  # program and subcommands, e.g. ("dagster", "code-server", "start")
    params: dict[str, Any]


def translate(argv: list[str], paths: Mapping[str, Path]) -> list[str]:
    """Container paths in `argv` as the files they are in this repository."""
    out = []
    for arg in argv:
        for inside, here in paths.items():
            if arg == inside or arg.startswith(inside.rstrip("/") + "/"):
                arg = str(here) + arg[len(inside.rstrip("/")) :]
                break
        out.append(arg)
    return out


def parse_command(argv: list[str], paths: Mapping[str, Path]) -> Parsed:
    if not argv:
        raise CommandError("empty command")
    args = translate(argv, paths)
    command = click_command(args[0])
    words = [args[0]]
    rest = args[1:]
    ctx: click.Context | None = None
    while isinstance(command, click.Group):
        if not rest:
            raise CommandError(f"`{' '.join(words)}` needs a subcommand")
        ctx = click.Context(command, info_name=words[-1], parent=ctx)
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            raise CommandError(f"`{' '.join(words)}` has no subcommand {rest[0]!r}")
        words.append(rest.pop(0))
        command = sub
    try:
        parsed = command.make_context(words[-1], list(rest), parent=ctx)
    except click.ClickException as exc:
        raise CommandError(f"`{' '.join(argv)}`: {exc.format_message()}") from exc
    return Parsed(tuple(words), dict(parsed.params))


def module_problems(module: str, attribute: str | None) -> list[str]:
    """A module that exists and assigns `attribute` at its top level (read, not imported: importing
    the code location would load every definition)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return [f"module {module} does not exist"]
    if attribute is None:
        return []
    tree = ast.parse(Path(spec.origin).read_text())
    names = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    return [] if attribute in names else [f"module {module} has no top-level {attribute}"]


def command_problems(where: str, argv: list[str], paths: Mapping[str, Path]) -> list[str]:
    try:
        parsed = parse_command(argv, paths)
    except CommandError as exc:
        return [f"{where}: {exc}"]
    problems = []
    if parsed.words[0] == "oddly" and parsed.words[1] not in COMMANDS:
        problems.append(f"{where}: oddly has no subcommand {parsed.words[1]}")
    if parsed.params.get("module_name"):
        problems += [
            f"{where}: {p}"
            for p in module_problems(parsed.params["module_name"], parsed.params.get("attribute"))
        ]
    target = parsed.params.get("target")
    if parsed.words == ("streamlit", "run") and not Path(target).is_file():
        problems.append(f"{where}: the Streamlit app {target} does not exist")
    return problems


def served_port(argv: list[str], paths: Mapping[str, Path]) -> int | None:
    try:
        params = parse_command(argv, paths).params
    except CommandError:
        return None
    port = params.get("port") or params.get("server_port")
    return int(port) if port else None


def runs_oddly_code(argv: list[str]) -> bool:
    """Whether the process reads the stores (and so needs the server-mode settings)."""
    if tuple(argv[:2]) in STORELESS_COMMANDS:
        return False
    return any(tuple(argv[: len(words)]) == words for words in ODDLY_PROGRAMS)


def is_dagster(argv: list[str]) -> bool:
    return bool(argv) and argv[0] in DAGSTER_PROGRAMS


def healthcheck_ports(test: list[str] | str) -> set[int]:
    text = test if isinstance(test, str) else " ".join(test)
    found = re.findall(r"(?:127\.0\.0\.1|localhost):(\d+)", text) + re.findall(r"(?:^|\s)-p\s+(\d+)", text)
    return {int(p) for p in found}


# ---------------------------------------------------------------------------------------------
# environment variables


@functools.cache
def feed_key_variables() -> frozenset[str]:
    """The variables feed agents read their API keys from: the name a feed's `api_key_env` gives in
    the image's oddly.yaml, or its agent's default. Read by the code, by name, outside Settings."""
    names = {
        field.default
        for agent in available_agents().values()
        for field in [agent.Options.model_fields.get("api_key_env")]
        if field is not None and isinstance(field.default, str)
    }
    return frozenset(names | shipped_feed_keys())


@functools.cache
def shipped_feed_keys() -> frozenset[str]:
    return frozenset(
        {
            f.options["api_key_env"]
            for f in load_config(REPO / "oddly.yaml").feeds
            if "api_key_env" in f.options
        }
    )


@functools.cache
def mlflow_variables() -> frozenset[str]:
    """The variables `mlflow server` reads: its options' and MLflow's declared environment."""
    import mlflow.environment_variables as declared

    server = click_command("mlflow")
    assert isinstance(server, click.Group)
    options = {
        name
        for param in server.commands["server"].params
        for name in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    }
    return frozenset(options | {getattr(v, "name", "") for v in vars(declared).values()} - {""})


def variable_problems(where: str, names: Iterable[str], image: str) -> list[str]:
    problems = []
    for name in names:
        if image.startswith("postgres:"):
            known = name in POSTGRES_IMAGE_VARIABLES
        elif name.startswith("ODDLY_"):
            known = name in SETTINGS_VARIABLES or name in feed_key_variables()
        elif name.startswith("DAGSTER_"):
            known = name in DAGSTER_VARIABLES
        elif name.startswith("MLFLOW_"):
            known = name in mlflow_variables()
        else:
            known = False
        if not known:
            problems.append(f"{where}: {name} is not a variable the program reads")
    return problems


def url_problems(where: str, value: str, services: Mapping[str, Any]) -> list[str]:
    """A PostgreSQL URL must name the compose server, its port, its role and a database it creates."""
    if not re.match(r"postgres(ql)?(\+\w+)?://", value):
        return []
    url = urlsplit(value)
    postgres = services.get(url.hostname or "")
    if postgres is None:
        return [f"{where}: {url.hostname} is not a service"]
    env = postgres.get("environment", {})
    problems = []
    if url.port not in healthcheck_ports(postgres["healthcheck"]["test"]):
        problems.append(f"{where}: port {url.port} is not the one {url.hostname} serves")
    if url.username != env.get("POSTGRES_USER"):
        problems.append(f"{where}: role {url.username} is not POSTGRES_USER")
    database = url.path.lstrip("/")
    if database not in init_script_databases() | {env.get("POSTGRES_DB")}:
        problems.append(
            f"{where}: database {database} is created by neither postgres-init.sql nor POSTGRES_DB"
        )
    return problems


# ---------------------------------------------------------------------------------------------
# compose.yaml


def compose_paths(service: Mapping[str, Any]) -> dict[str, Path]:
    """Container paths → files here: the image's /app is the repository; bind mounts their source."""
    paths = {"/app": REPO}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            paths[target] = (DEPLOY / source).resolve()
    return paths


def image_name(compose: Mapping[str, Any]) -> str:
    return compose["x-image"]["image"].split(":")[0]


def check_compose(compose: Mapping[str, Any], env_example: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    services: dict[str, Any] = compose["services"]
    ours = compose["x-image"]["image"]
    declared_volumes = set(compose.get("volumes") or {})
    ports = {
        name: served_port(s.get("command", []), compose_paths(s))
        for name, s in services.items()
        if "command" in s
    }
    instance = load_yaml(DEPLOY / "dagster.yaml")
    home_volumes: set[str] = set()

    for name, service in services.items():
        where = f"compose service {name}"
        image = service.get("image", "")
        env = {k: interpolate(str(v), env_example) for k, v in (service.get("environment") or {}).items()}
        argv = [str(a) for a in service.get("command", [])]
        paths = compose_paths(service)
        problems += variable_problems(where, env, image)
        for key, value in env.items():
            problems += url_problems(f"{where} {key}", value, services)

        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".") and not (DEPLOY / source).exists():
                problems.append(f"{where}: mounts {source}, which does not exist")
            elif not source.startswith((".", "/")) and source not in declared_volumes:
                problems.append(f"{where}: volume {source} is not declared")
        for dependency in service.get("depends_on") or {}:
            if dependency not in services:
                problems.append(f"{where}: depends on {dependency}, which is not a service")

        port = ports.get(name) if image == ours else None
        if image == ours:
            problems += command_problems(where, argv, paths)
        if port is not None:
            for mapping in service.get("ports", []):
                if int(str(mapping).split(":")[-1]) != port:
                    problems.append(f"{where}: publishes {mapping}, but serves on {port}")
            test = (service.get("healthcheck") or {}).get("test")
            if not test:
                problems.append(f"{where}: serves on {port} without a healthcheck")
            elif healthcheck_ports(test) != {port}:
                problems.append(
                    f"{where}: the healthcheck checks {sorted(healthcheck_ports(test))}, not {port}"
                )
        elif image == ours and service.get("ports"):
            problems.append(f"{where}: publishes ports but serves none")

        if image == ours and runs_oddly_code(argv):
            missing = SERVER_MODE_VARIABLES - set(env)
            if missing:
                problems.append(f"{where}: runs Oddly's code without {', '.join(sorted(missing))}")
        if argv[:2] == ["dagster", "code-server"]:
            for key in sorted(shipped_feed_keys() - set(env)):
                problems.append(f"{where}: polls the image's feeds without {key}, the key one of them reads")
        if "ODDLY_HOME" in env:
            mounted = {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}
            if env["ODDLY_HOME"] not in mounted:
                problems.append(f"{where}: ODDLY_HOME {env['ODDLY_HOME']} is not a volume")
            else:
                home_volumes.add(mounted[env["ODDLY_HOME"]])
        if (
            any(tuple(argv[:2]) == words for words in TELEGRAM_COMMANDS)
            and "ODDLY_TELEGRAM_BOT_TOKEN" not in env
        ):
            problems.append(f"{where}: `{' '.join(argv)}` without ODDLY_TELEGRAM_BOT_TOKEN")

        if is_dagster(argv):
            home = env.get("DAGSTER_HOME")
            if home is None or paths.get(f"{home}/dagster.yaml") != DEPLOY / "dagster.yaml":
                problems.append(f"{where}: deploy/dagster.yaml is not mounted in its DAGSTER_HOME")
            for variable in sorted(instance_env_references(instance) - set(env)):
                problems.append(f"{where}: dagster.yaml reads {variable}, which it is not given")
            timeout = env.get("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS")
            if timeout != str(SENSOR_TIMEOUT_SECONDS):
                problems.append(f"{where}: DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS is {timeout}, not the demo's")
        if argv[:1] in (["dagster-webserver"], ["dagster-daemon"]):
            problems += workspace_problems(where, argv, paths, services, ports)
        if "ODDLY_SIMULATOR_HOST" in env:
            host, port_text = env["ODDLY_SIMULATOR_HOST"], env.get("ODDLY_SIMULATOR_PORT", "8765")
            if host not in services or ports.get(host) != int(port_text):
                problems.append(f"{where}: no service {host} serving the simulator on {port_text}")

    if len(home_volumes) > 1:
        problems.append(f"compose: ODDLY_HOME is on different volumes {sorted(home_volumes)}")
    problems += interpolation_problems(compose, env_example)
    return problems


def workspace_problems(
    where: str,
    argv: list[str],
    paths: Mapping[str, Path],
    services: Mapping[str, Any],
    ports: Mapping[str, int | None],
) -> list[str]:
    params = parse_command(argv, paths).params
    files = params.get("workspace") or ()
    if not files:
        return [f"{where}: names no workspace file"]
    problems = []
    for entry in load_yaml(Path(files[0]))["load_from"]:
        server = entry["grpc_server"]
        host, port = server["host"], int(server["port"])
        if ports.get(host) != port:
            problems.append(f"{where}: the workspace's {host}:{port} is no service serving that port")
            continue
        code_server = parse_command([str(a) for a in services[host]["command"]], {}).params
        if code_server.get("location_name") != server.get("location_name"):
            problems.append(
                f"{where}: the workspace calls the location {server.get('location_name')!r}, "
                f"the code server {code_server.get('location_name')!r}"
            )
    return problems


INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, env_example: Mapping[str, str]) -> str:
    """What compose makes of `text` with .env.example as the .env (a default where it has none)."""

    def value(match: re.Match[str]) -> str:
        name, operator, default = match.groups()
        if name in env_example:
            return env_example[name]
        return default if operator and "-" in operator else ""

    return INTERPOLATION.sub(value, text)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def interpolation_problems(compose: Mapping[str, Any], env_example: Mapping[str, str]) -> list[str]:
    """Every ${VAR} compose fills in is in .env.example or has a default, and .env.example holds
    nothing compose does not use."""
    used: set[str] = set()
    problems = []
    for text in strings(compose):
        for match in INTERPOLATION.finditer(text.replace("$$", "")):
            used.add(match.group(1))
            if match.group(1) not in env_example and "-" not in (match.group(2) or ""):
                problems.append(f"compose: ${{{match.group(1)}}} is neither in .env.example nor defaulted")
    problems += [
        f".env.example: {name} is not used by compose.yaml" for name in sorted(set(env_example) - used)
    ]
    for name in env_example:
        if name.startswith("ODDLY_") and name not in SETTINGS_VARIABLES | feed_key_variables():
            problems.append(f".env.example: {name} is not a setting")
    return sorted(set(problems))


# ---------------------------------------------------------------------------------------------
# Dockerfile


def check_dockerfile(instructions: list[Instruction], compose: Mapping[str, Any]) -> list[str]:
    problems = []
    keywords = [ins.keyword for ins in instructions]
    if instructions[0].text != "python:3.11-slim":
        problems.append(f"Dockerfile: FROM {instructions[0].text}, not python:3.11-slim")
    runs = [(i, ins.text) for i, ins in enumerate(instructions) if ins.keyword == "RUN"]
    if not any(re.search(r"pip install .*-e \.", text) for _, text in runs):
        problems.append("Dockerfile: does not install the project in place (pip install -e .)")
    manifest = [i for i, text in runs if text == manifest_command()]
    problems += command_problems("Dockerfile manifest", shlex.split(manifest_command()), {})
    if not manifest:
        problems.append(
            f"Dockerfile: does not prepare the dbt manifest as `make manifest` does ({manifest_command()})"
        )
    users = [(i, ins.text) for i, ins in enumerate(instructions) if ins.keyword == "USER"]
    if not users or users[-1][1] in ("root", "0") or keywords.index("CMD") < users[-1][0]:
        problems.append("Dockerfile: the image does not end as a non-root user")
    elif manifest and manifest[0] < users[-1][0]:
        problems.append(
            "Dockerfile: the manifest is prepared as root, so the user cannot rewrite dbt's target"
        )
    if "ENTRYPOINT" in keywords:
        problems.append("Dockerfile: an ENTRYPOINT would be prepended to the commands compose and Helm give")
    (cmd,) = [ins for ins in instructions if ins.keyword == "CMD"]
    problems += command_problems("Dockerfile CMD", cmd.exec_form(), {"/app": REPO})
    workdirs = [ins.text for ins in instructions if ins.keyword == "WORKDIR"]
    if workdirs != ["/app"]:
        problems.append(f"Dockerfile: WORKDIR {workdirs}, where compose and Helm expect /app")
    for ins in instructions:
        if ins.keyword == "COPY":
            for source in ins.text.split()[:-1]:
                if not source.startswith("--") and not (REPO / source).exists():
                    problems.append(f"Dockerfile: COPY {source}, which does not exist")

    env = dockerfile_env(instructions)
    shared = {**compose["x-oddly-env"], **compose["x-dagster-env"]}
    for name in ("ODDLY_HOME", "DAGSTER_HOME"):
        if env.get(name) != shared.get(name):
            problems.append(f"Dockerfile: ENV {name}={env.get(name)}, compose says {shared.get(name)}")
    problems += variable_problems(
        "Dockerfile ENV", [n for n in env if n.startswith(("ODDLY_", "DAGSTER_"))], ""
    )
    owned = owned_paths(instructions)
    for name, service in compose["services"].items():
        for volume in (
            service.get("volumes", []) if service.get("image") == compose["x-image"]["image"] else []
        ):
            source, target = volume.split(":")[:2]
            if not source.startswith((".", "/")) and not any(
                target == o or target.startswith(o + "/") for o in owned
            ):
                problems.append(
                    f"Dockerfile: {target} (volume {source} of {name}) is not the user's to write"
                )
    exposed = {int(p) for ins in instructions if ins.keyword == "EXPOSE" for p in ins.text.split()}
    for name, service in compose["services"].items():
        if service.get("image") == compose["x-image"]["image"]:
            port = served_port([str(a) for a in service.get("command", [])], compose_paths(service))
            if port is not None and port not in exposed:
                problems.append(f"Dockerfile: does not EXPOSE {port}, which {name} serves")
    return problems


def check_dockerignore(patterns: list[str]) -> list[str]:
    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, p)
            or fnmatch.fnmatch(path, p + "/*")
            or path.startswith(p.rstrip("/") + "/")
            for p in patterns
        )

    problems = [
        f"Dockerfile.dockerignore: leaves out {path}, which the image needs"
        for path in IMAGE_NEEDS
        if ignored(path)
    ]
    problems += [
        f"Dockerfile.dockerignore: does not leave out {path}"
        for path in ("deploy/.env", ".venv/bin/python", ".oddly/warehouse.duckdb", ".git/HEAD")
        if not ignored(path)
    ]
    return problems


# ---------------------------------------------------------------------------------------------
# dagster.yaml and the Helm values


def check_instance(instance: Mapping[str, Any]) -> list[str]:
    """deploy/dagster.yaml keeps what `oddly dagster-home` writes for the demo, storage aside."""
    demo = demo_instance_config(Settings())
    problems = []
    for key in ("run_coordinator", "concurrency", "sensors", "telemetry"):
        if instance.get(key) != demo.get(key):
            problems.append(f"dagster.yaml: {key} is {instance.get(key)}, the demo's is {demo.get(key)}")
    if set(instance.get("storage", {})) != {"postgres"}:
        problems.append("dagster.yaml: storage is not dagster-postgres")
    return problems


# Keys of Dagster's chart (dagster-io/dagster helm/dagster/schema/schema/charts/…: values.py, subschema/
# global_.py, postgresql.py, webserver.py, daemon.py, run_launcher.py, retention.py, telemetry.py,
# dagster_user_deployments/subschema/user_deployments.py; deploymentStrategy is read by the user
# deployment template). A key the chart does not know is silently ignored by Helm, so a typo here
# would drop a setting without a word.
CHART_KEYS: dict[str, set[str]] = {
    path: set(keys.split())
    for path, keys in {
        "": """dagsterWebserver dagster-user-deployments postgresql generatePostgresqlPasswordSecret
            generateCeleryConfigSecret rabbitmq redis flower ingress imagePullSecrets computeLogManager
            scheduler runLauncher pythonLogs dagsterDaemon busybox migrate telemetry serviceAccount global
            retention additionalInstanceConfig""",
        "global": "postgresqlSecretName dagsterHome serviceAccountName celeryConfigSecretName",
        "postgresql": """image enabled postgresqlHost postgresqlUsername postgresqlPassword postgresqlDatabase
            postgresqlParams postgresqlScheme service""",
        "postgresql.service": "port",
        "dagsterWebserver": """replicaCount image nameOverride pathPrefix service workspace env envConfigMaps
            envSecrets deploymentLabels labels nodeSelector affinity tolerations podSecurityContext
            securityContext resources readinessProbe livenessProbe startupProbe annotations enableReadOnly
            dbStatementTimeout dbPoolRecycle logLevel schedulerName volumeMounts volumes""",
        "dagster-user-deployments": "enabled enableSubchart imagePullSecrets deployments",
        "dagster-user-deployments.deployments[]": """name image dagsterApiGrpcArgs codeServerArgs
            includeConfigInLaunchedRuns port env envConfigMaps envSecrets annotations nodeSelector affinity
            tolerations podSecurityContext securityContext resources livenessProbe readinessProbe
            startupProbe labels volumeMounts volumes schedulerName deploymentStrategy""",
        "dagster-user-deployments.deployments[].image": "repository tag pullPolicy",
        "runLauncher": "type config",
        "runLauncher.config": "celeryK8sRunLauncher k8sRunLauncher customRunLauncher",
        "runLauncher.config.k8sRunLauncher": """image imagePullPolicy jobNamespace loadInclusterConfig
            kubeconfigFile envConfigMaps envSecrets envVars volumeMounts volumes labels failPodOnRunFailure
            resources schedulerName securityContext runK8sConfig""",
        "runLauncher.config.k8sRunLauncher.runK8sConfig": """containerConfig podSpecConfig
            podTemplateSpecMetadata jobSpecConfig jobMetadata""",
        "dagsterDaemon": """enabled image runCoordinator heartbeatTolerance env envConfigMaps envSecrets
            deploymentLabels labels nodeSelector affinity tolerations podSecurityContext securityContext
            resources livenessProbe readinessProbe startupProbe annotations runMonitoring runRetries sensors
            schedules schedulerName volumeMounts volumes""",
        "dagsterDaemon.runCoordinator": "enabled type config",
        "dagsterDaemon.runCoordinator.config": "queuedRunCoordinator customRunCoordinator",
        "dagsterDaemon.runCoordinator.config.queuedRunCoordinator": """maxConcurrentRuns tagConcurrencyLimits
            dequeueIntervalSeconds dequeueNumWorkers dequeueUseThreads blockOpConcurrencyLimitedRuns""",
        "dagsterDaemon.sensors": "useThreads numWorkers numSubmitWorkers",
        "retention": "enabled sensor schedule autoMaterialize",
        "retention.sensor": "purgeAfterDays",
        "retention.schedule": "purgeAfterDays",
        "telemetry": "enabled",
    }.items()
}
TICK_STATUSES = {"skipped", "success", "failure", "started"}


def nodes(values: Any, path: str) -> Iterator[Any]:
    """The values at a dotted path (`[]` steps into every item of a list)."""
    current = [values]
    for step in filter(None, path.split(".")):
        key, each = step.removesuffix("[]"), step.endswith("[]")
        current = [node.get(key) for node in current if isinstance(node, dict) and key in node]
        if each:
            current = [item for node in current for item in node or []]
    yield from current


def chart_key_problems(values: Mapping[str, Any]) -> list[str]:
    problems = []
    for path, known in CHART_KEYS.items():
        for node in nodes(values, path):
            if isinstance(node, dict):
                problems += [
                    f"helm values: {path or '(top)'} has no key {k!r} in Dagster's chart"
                    for k in set(node) - known
                ]
    for kind in ("sensor", "schedule"):
        for node in nodes(values, f"retention.{kind}.purgeAfterDays"):
            if isinstance(node, dict) and set(node) != TICK_STATUSES:
                problems.append(
                    f"helm values: retention.{kind}.purgeAfterDays needs exactly {sorted(TICK_STATUSES)}"
                )
    return problems


def secret_keys(documents: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    return {
        d["metadata"]["name"]: set(d.get("stringData") or d.get("data") or {})
        for d in documents
        if d["kind"] == "Secret"
    }


def env_names(env: Any) -> dict[str, str]:
    if isinstance(env, dict):
        return {k: str(v) for k, v in env.items()}
    return {e["name"]: str(e.get("value", "")) for e in env or []}


def check_helm(
    values: Mapping[str, Any],
    services: list[dict[str, Any]],
    secrets: list[dict[str, Any]],
    compose: Mapping[str, Any],
    instructions: list[Instruction],
) -> list[str]:
    problems = chart_key_problems(values)
    keys = secret_keys(secrets)
    instance = load_yaml(DEPLOY / "dagster.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    where = f"helm user deployment {deployment['name']}"
    repository = deployment["image"]["repository"]
    image = f"{repository}:{deployment['image']['tag']}"
    if repository.rsplit("/", 1)[-1] != image_name(compose):
        problems.append(f"{where}: image {repository} is not the compose image {image_name(compose)}")
    if values["runLauncher"]["type"] != "K8sRunLauncher":
        problems.append("helm values: runs are not launched by the K8sRunLauncher")

    # the code server: the chart runs `dagster code-server start -h 0.0.0.0 -p <port>` + codeServerArgs
    argv = ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", str(deployment["port"])]
    argv += [str(a) for a in deployment.get("codeServerArgs", [])]
    problems += command_problems(where, argv, {})
    compose_argv = [str(a) for a in compose["services"]["code-location"]["command"]]
    compose_params = parse_command(compose_argv, {}).params
    if compose_params.get("location_name") != deployment["name"]:
        problems.append(f"{where}: compose names the location {compose_params.get('location_name')!r}")
    named = compose_argv.index("--location-name")
    serving = compose_argv[7:named] + compose_argv[named + 2 :]
    if serving != argv[7:]:
        problems.append(f"{where}: serves {argv[7:]}, compose's code location serves {serving}")

    env = env_names(deployment.get("env"))
    secret_names = [s["name"] for s in deployment.get("envSecrets", [])]
    problems += variable_problems(where, env, "")
    problems += [f"{where}: Secret {n} is not in secrets.example.yaml" for n in secret_names if n not in keys]
    given = set(env).union(*(keys.get(n, set()) for n in secret_names))
    problems += variable_problems(f"{where} secrets", given - set(env), "")
    if SERVER_MODE_VARIABLES - given:
        problems.append(
            f"{where}: runs Oddly's code without {', '.join(sorted(SERVER_MODE_VARIABLES - given))}"
        )
    problems += volume_problems(
        where, env, deployment.get("volumes", []), deployment.get("volumeMounts", []), services
    )
    problems += config_file_problems(
        where, env, deployment.get("volumes", []), deployment.get("volumeMounts", [])
    )
    if not deployment.get("includeConfigInLaunchedRuns", {}).get("enabled", True):
        problems.append(f"{where}: runs would not get its env, secrets and volume")

    uid = image_uid(instructions)
    contexts = {
        where: deployment.get("podSecurityContext", {}),
        "helm run pods": values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"][
            "securityContext"
        ],
    }
    contexts |= {
        f"oddly-services {d['metadata']['name']}": d["spec"]["template"]["spec"].get("securityContext", {})
        for d in services
        if d["kind"] == "Deployment"
    }
    for part, context in contexts.items():
        if {context.get("runAsUser"), context.get("fsGroup")} != {uid}:
            problems.append(
                f"{part}: runs as {context.get('runAsUser')} (fsGroup {context.get('fsGroup')}), "
                f"not the image's user {uid}"
            )
    home = dockerfile_env(instructions).get("DAGSTER_HOME")
    if values["global"]["dagsterHome"] != home:
        problems.append(f"helm values: global.dagsterHome is not the image's DAGSTER_HOME {home}")
    for part in ("dagsterDaemon", "dagsterWebserver"):
        part_env = env_names(values[part].get("env"))
        problems += variable_problems(f"helm {part}", part_env, "")
    for part, part_env in (
        ("dagsterDaemon", env_names(values["dagsterDaemon"].get("env"))),
        (where, env),
    ):
        timeout = part_env.get("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS")
        if timeout != str(SENSOR_TIMEOUT_SECONDS):
            problems.append(f"{part}: DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS is {timeout}, not the demo's")

    # the same instance as compose's dagster.yaml
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    if daemon["runCoordinator"]["type"] != instance["run_coordinator"]["class"]:
        problems.append("helm values: the run coordinator differs from dagster.yaml's")
    if queued.get("maxConcurrentRuns") != instance["concurrency"]["runs"]["max_concurrent_runs"]:
        problems.append("helm values: maxConcurrentRuns differs from dagster.yaml's max_concurrent_runs")
    if {
        "use_threads": daemon["sensors"]["useThreads"],
        "num_workers": daemon["sensors"].get("numWorkers"),
    } != instance["sensors"]:
        problems.append("helm values: the daemon's sensors differ from dagster.yaml's")
    if (
        values.get("additionalInstanceConfig", {}).get("concurrency", {}).get("pools")
        != instance["concurrency"]["pools"]
    ):
        problems.append("helm values: the concurrency pools differ from dagster.yaml's")
    retention = {
        kind: {"purge_after_days": values["retention"][kind]["purgeAfterDays"]}
        for kind in ("sensor", "schedule")
    }
    if not values["retention"]["enabled"] or retention != instance["retention"]:
        problems.append("helm values: the tick retention differs from dagster.yaml's")
    if values["telemetry"] != instance["telemetry"]:
        problems.append("helm values: telemetry differs from dagster.yaml's")

    problems += check_k8s_services(services, keys, image, compose)
    return problems


def volume_problems(
    where: str,
    env: Mapping[str, str],
    volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
    services: list[dict[str, Any]],
) -> list[str]:
    claims = {d["metadata"]["name"] for d in services if d["kind"] == "PersistentVolumeClaim"}
    by_name = {v["name"]: v for v in volumes}
    home = [m for m in mounts if m["mountPath"] == env.get("ODDLY_HOME")]
    if not home:
        return [f"{where}: ODDLY_HOME {env.get('ODDLY_HOME')} is not a mounted volume"]
    claim = by_name.get(home[0]["name"], {}).get("persistentVolumeClaim", {}).get("claimName")
    if claim not in claims:
        return [f"{where}: ODDLY_HOME's volume is not the shared claim of oddly-services.yaml"]
    return []


def config_file_problems(
    where: str, env: Mapping[str, str], volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]
) -> list[str]:
    """The feeds file is the team's ConfigMap, mounted where ODDLY_CONFIG_FILE points (the image's own
    oddly.yaml polls the simulator, which a cluster does not run)."""
    config_file = env.get("ODDLY_CONFIG_FILE")
    if config_file is None:
        return [f"{where}: no ODDLY_CONFIG_FILE, so the code location polls the image's simulator feeds"]
    config_maps = {v["name"] for v in volumes if "configMap" in v}
    if not any(m["name"] in config_maps and m["mountPath"] == str(Path(config_file).parent) for m in mounts):
        return [f"{where}: ODDLY_CONFIG_FILE {config_file} is not in a mounted ConfigMap"]
    return []


def check_k8s_services(
    services: list[dict[str, Any]], keys: Mapping[str, set[str]], image: str, compose: Mapping[str, Any]
) -> list[str]:
    problems = []
    compose_commands = {
        tuple(str(a) for a in s["command"][:2]): [str(a) for a in s["command"]]
        for s in compose["services"].values()
        if s.get("image") == compose["x-image"]["image"]
    }
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in services:
        by_kind.setdefault(doc["kind"], []).append(doc)
    service_ports = {
        (d["spec"]["selector"]["app"], p["targetPort"])
        for d in by_kind.get("Service", [])
        for p in d["spec"]["ports"]
    }
    for deployment in by_kind.get("Deployment", []):
        pod = deployment["spec"]["template"]["spec"]
        app = deployment["spec"]["template"]["metadata"]["labels"]["app"]
        for container in pod["containers"]:
            where = f"oddly-services {deployment['metadata']['name']}"
            argv = [str(a) for a in container["command"]]
            if container["image"] != image:
                problems.append(f"{where}: image {container['image']} is not the code location's {image}")
            problems += command_problems(where, argv, {"/app": REPO})
            if compose_commands.get(tuple(argv[:2])) != argv:
                problems.append(
                    f"{where}: runs `{' '.join(argv)}`, compose runs {compose_commands.get(tuple(argv[:2]))}"
                )
            env = env_names(container.get("env"))
            problems += variable_problems(where, env, "")
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["key"] not in keys.get(ref["name"], set()):
                    problems.append(f"{where}: Secret {ref['name']} has no key {ref['key']}")
            secrets = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
            problems += [
                f"{where}: Secret {n} is not in secrets.example.yaml" for n in secrets if n not in keys
            ]
            given = set(env).union(*(keys.get(n, set()) for n in secrets))
            problems += variable_problems(f"{where} secrets", given - set(env), "")
            if runs_oddly_code(argv):
                if SERVER_MODE_VARIABLES - given:
                    missing = ", ".join(sorted(SERVER_MODE_VARIABLES - given))
                    problems.append(f"{where}: runs Oddly's code without {missing}")
                problems += volume_problems(
                    where, env, pod.get("volumes", []), container.get("volumeMounts", []), services
                )
            if any(tuple(argv[:2]) == words for words in TELEGRAM_COMMANDS):
                if "ODDLY_TELEGRAM_BOT_TOKEN" not in given:
                    problems.append(f"{where}: `{' '.join(argv)}` without ODDLY_TELEGRAM_BOT_TOKEN")
                if (
                    deployment["spec"].get("replicas") != 1
                    or deployment["spec"].get("strategy", {}).get("type") != "Recreate"
                ):
                    problems.append(f"{where}: must run exactly one replica, also during a rollout")
            port = served_port(argv, {"/app": REPO})
            if port is not None:
                declared = {p["containerPort"] for p in container.get("ports", [])}
                probe = container.get("readinessProbe", {}).get("httpGet", {}).get("port")
                if declared != {port} or probe != port:
                    problems.append(f"{where}: serves on {port}, declares {sorted(declared)}, probes {probe}")
                if (app, port) not in service_ports:
                    problems.append(f"{where}: no Service targets its port {port}")
    return problems


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY / "compose.yaml")


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(DEPLOY / ".env.example")


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return read_dockerfile(DEPLOY / "Dockerfile")


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return load_yaml(HELM / "values.yaml")


@pytest.fixture(scope="module")
def k8s_services() -> list[dict[str, Any]]:
    return load_documents(HELM / "oddly-services.yaml")


@pytest.fixture(scope="module")
def secrets() -> list[dict[str, Any]]:
    return load_documents(HELM / "secrets.example.yaml")


# ---------------------------------------------------------------------------------------------
# the files as committed


def test_compose_services_are_the_platform(compose: dict[str, Any]) -> None:
    services = compose["services"]
    commands = {name: [str(a) for a in s.get("command", [])] for name, s in services.items()}
    assert services["postgres"]["image"].startswith("postgres:")
    assert commands["code-location"][:3] == ["dagster", "code-server", "start"]
    assert commands["dagster-webserver"][0] == "dagster-webserver"
    assert commands["dagster-daemon"][:2] == ["dagster-daemon", "run"]
    assert commands["streamlit"][:2] == ["streamlit", "run"]
    assert commands["mlflow"][:2] == ["mlflow", "server"]
    assert commands["sender"] == ["oddly", "send"]
    assert commands["bot"] == ["oddly", "bot"]
    assert services["simulator"]["profiles"] == ["demo"]
    assert init_script_databases() | {services["postgres"]["environment"]["POSTGRES_DB"]} == {
        "warehouse",
        "app",
        "dagster",
        "mlflow",
    }


def test_compose_agrees_with_the_code(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    assert check_compose(compose, env_example) == []


def test_dockerfile_agrees_with_the_code(instructions: list[Instruction], compose: dict[str, Any]) -> None:
    assert check_dockerfile(instructions, compose) == []


def test_dockerignore_keeps_what_the_image_needs_and_drops_secrets() -> None:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert check_dockerignore(patterns) == []


def test_dagster_yaml_is_a_valid_server_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compose: dict[str, Any]
) -> None:
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config
    from dagster_postgres import DagsterPostgresStorage

    url = compose["x-dagster-env"]["ODDLY_DAGSTER_PG_URL"]
    monkeypatch.setenv("ODDLY_DAGSTER_PG_URL", url)
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    instance, _ = dagster_instance_config(str(tmp_path))  # Dagster's schema accepts the file
    storage = process_config(
        resolve_to_config_type(DagsterPostgresStorage.config_type()), instance["storage"]["postgres"]
    )
    assert storage.success, storage.errors
    assert storage.value["postgres_url"].startswith("postgresql+psycopg2://")
    assert check_instance(instance) == []


def test_dagster_variables_are_read_by_dagster() -> None:
    spec = importlib.util.find_spec("dagster")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    for name, source in DAGSTER_VARIABLES.items():
        assert f'"{name}"' in (package / source).read_text(), f"dagster no longer reads {name} in {source}"


def test_helm_values_agree_with_the_chart_the_code_and_compose(
    values: dict[str, Any],
    k8s_services: list[dict[str, Any]],
    secrets: list[dict[str, Any]],
    compose: dict[str, Any],
    instructions: list[Instruction],
) -> None:
    assert check_helm(values, k8s_services, secrets, compose, instructions) == []


def test_the_local_env_file_stays_out_of_git() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("deploy/.env", "deploy/helm/secrets.yaml"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{path} (secrets) is not ignored by git"


# ---------------------------------------------------------------------------------------------
# each check can fail


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


DELETE = object()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set("services.sender.command", ["oddly", "sendd"]), "has no subcommand 'sendd'"),
        (_set("services.bot.command", ["oddly", "bot", "--verbose-please"]), "No such option"),
        (
            _set("services.code-location.command.8", "orchestration.definitionz"),
            "orchestration.definitionz does not exist",
        ),
        (_set("services.code-location.command.10", "definitions"), "has no top-level definitions"),
        (_set("services.streamlit.command.2", "/app/dashboards/nope.py"), "nope.py does not exist"),
        (_set("services.mlflow.command", ["mlflo", "server"]), "no installed program 'mlflo'"),
        (
            _set("services.sender.environment.ODDLY_TELEGRAM_TOKEN", "x"),
            "ODDLY_TELEGRAM_TOKEN is not a variable",
        ),
        (
            _set("services.sender.environment.ODDLY_DB_URL", "postgresql://oddly:x@postgres:5432/app"),
            "ODDLY_DB_URL is not a variable",
        ),
        (
            _set("services.dagster-daemon.environment.DAGSTER_GRPC_TIMEOUT", "600"),
            "DAGSTER_GRPC_TIMEOUT is not",
        ),
        (_set("services.mlflow.environment.MLFLOW_BACKEND_STORE", "x"), "MLFLOW_BACKEND_STORE is not"),
        (_set("services.postgres.environment.PGDATA_DIR", "x"), "PGDATA_DIR is not"),
        (_set("services.bot.environment.ODDLY_APP_DATABASE_URL", DELETE), "without ODDLY_APP_DATABASE_URL"),
        (_set("services.streamlit.environment.ODDLY_WAREHOUSE_URL", DELETE), "without ODDLY_WAREHOUSE_URL"),
        (
            _set("services.bot.environment.ODDLY_TELEGRAM_BOT_TOKEN", DELETE),
            "without ODDLY_TELEGRAM_BOT_TOKEN",
        ),
        (
            _set("services.dagster-daemon.environment.ODDLY_DAGSTER_PG_URL", DELETE),
            "reads ODDLY_DAGSTER_PG_URL",
        ),
        (
            _set("services.dagster-webserver.environment.DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", "60"),
            "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS is 60, not",
        ),
        (
            _set("services.dagster-daemon.volumes.0", "./workspace.yaml:/opt/dagster/home/dagster.yaml:ro"),
            "deploy/dagster.yaml is not mounted",
        ),
        (_set("services.streamlit.ports", ["127.0.0.1:8501:8502"]), "publishes 127.0.0.1:8501:8502"),
        (
            _set("services.mlflow.healthcheck.test", ["CMD", "curl", "http://127.0.0.1:5001/health"]),
            "checks [5001], not 5000",
        ),
        (_set("services.simulator.healthcheck", DELETE), "without a healthcheck"),
        (_set("services.code-location.command.6", "4001"), "the workspace's code-location:4000"),
        (
            _set("services.code-location.command.12", "odd"),
            "calls the location 'oddly', the code server 'odd'",
        ),
        (_set("services.code-location.environment.ODDLY_SIMULATOR_PORT", "8766"), "no service simulator"),
        (
            _set("services.code-location.environment.ODDLY_SIMULATOR_ODDS_API_KEY", DELETE),
            "without ODDLY_SIMULATOR_ODDS_API_KEY",
        ),
        (
            _set("services.bot.environment.ODDLY_WAREHOUSE_URL", "postgresql://oddly:x@postgres:5432/marts"),
            "database marts is created by neither",
        ),
        (
            _set("services.bot.environment.ODDLY_WAREHOUSE_URL", "postgresql://oddly:x@db:5432/warehouse"),
            "db is not a service",
        ),
        (
            _set(
                "services.bot.environment.ODDLY_WAREHOUSE_URL", "postgresql://oddly:x@postgres:6432/warehouse"
            ),
            "port 6432 is not the one postgres serves",
        ),
        (_set("services.streamlit.volumes", []), "ODDLY_HOME /var/lib/oddly is not a volume"),
        (_set("services.mlflow.volumes.0", "other-home:/var/lib/oddly"), "volume other-home is not declared"),
        (_set("services.bot.depends_on", {"db": {"condition": "service_healthy"}}), "depends on db"),
        (
            _set("services.bot.environment.ODDLY_APP_URL", "${APP_URL}"),
            "${APP_URL} is neither in .env.example",
        ),
    ],
)
def test_compose_check_reports(
    compose: dict[str, Any],
    env_example: dict[str, str],
    mutate: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    broken = copy.deepcopy(compose)
    for service in broken["services"].values():  # the anchors' dicts are shared; unshare them
        for key in ("environment", "volumes", "command"):
            if key in service:
                service[key] = copy.deepcopy(service[key])
    mutate(broken)
    problems = check_compose(broken, env_example)
    assert any(expected in p for p in problems), problems


def test_env_example_check_reports_unused_and_unknown(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    problems = check_compose(compose, {**env_example, "ODDLY_NOT_A_SETTING": "1"})
    assert ".env.example: ODDLY_NOT_A_SETTING is not used by compose.yaml" in problems
    assert ".env.example: ODDLY_NOT_A_SETTING is not a setting" in problems
    without = {k: v for k, v in env_example.items() if k != "POSTGRES_PASSWORD"}
    assert any("${POSTGRES_PASSWORD} is neither" in p for p in check_compose(compose, without))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("FROM python:3.11-slim", "FROM python:3.12-slim", "not python:3.11-slim"),
        ("RUN oddly dbt parse --quiet", "RUN oddly dbt compile", "does not prepare the dbt manifest"),
        ("USER oddly", "USER root", "does not end as a non-root user"),
        ('"orchestration.definitions"', '"orchestration.defs"', "orchestration.defs does not exist"),
        ('"code-server", "start"', '"code-server", "begin"', "has no subcommand 'begin'"),
        ("DAGSTER_HOME=/opt/dagster/home", "DAGSTER_HOME=/opt/dagster", "ENV DAGSTER_HOME=/opt/dagster"),
        ("EXPOSE 4000 3000 8501 5000 8765", "EXPOSE 4000 3000 5000 8765", "does not EXPOSE 8501"),
        ("COPY pyproject.toml ./", "COPY pyproject.tom ./", "COPY pyproject.tom, which does not exist"),
        ("pip install --no-deps -e .", "pip install --no-deps .", "does not install the project in place"),
        ("/opt/dagster/home dbt_project/target", "dbt_project/target", "/opt/dagster/home/storage (volume"),
    ],
)
def test_dockerfile_check_reports(
    tmp_path: Path, compose: dict[str, Any], old: str, new: str, expected: str
) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert old in text
    (tmp_path / "Dockerfile").write_text(text.replace(old, new))
    problems = check_dockerfile(read_dockerfile(tmp_path / "Dockerfile"), compose)
    assert any(expected in p for p in problems), problems


def test_dockerfile_check_reports_the_manifest_parsed_as_root(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    parse = "RUN oddly dbt parse --quiet\n"
    moved = text.replace(parse, "").replace("USER oddly\n", parse + "USER oddly\n")
    (tmp_path / "Dockerfile").write_text(moved)
    problems = check_dockerfile(read_dockerfile(tmp_path / "Dockerfile"), compose)
    assert any("prepared as root" in p for p in problems), problems


def test_dockerignore_check_reports() -> None:
    assert "Dockerfile.dockerignore: leaves out dbt_project/dbt_project.yml, which the image needs" in (
        check_dockerignore(["dbt_project"])
    )
    assert "Dockerfile.dockerignore: does not leave out deploy/.env" in check_dockerignore(
        [".venv", ".oddly", ".git"]
    )


def test_instance_check_reports_drift_from_the_demo() -> None:
    instance = load_yaml(DEPLOY / "dagster.yaml")
    instance["sensors"] = {"use_threads": False}
    instance["storage"] = {"sqlite": {"base_dir": "/tmp"}}
    problems = check_instance(instance)
    assert any(p.startswith("dagster.yaml: sensors") for p in problems), problems
    assert "dagster.yaml: storage is not dagster-postgres" in problems


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set("dagsterDaemon.sensors.useThread", True), "dagsterDaemon.sensors has no key 'useThread'"),
        (_set("dagster-user-deployments.deployments.0.replicas", 2), "has no key 'replicas'"),
        (_set("retention.sensor.purgeAfterDays", {"skipped": 1}), "needs exactly"),
        (
            _set(
                "dagster-user-deployments.deployments.0.codeServerArgs",
                ["-m", "orchestration.nope", "-a", "defs"],
            ),
            "orchestration.nope does not exist",
        ),
        (
            _set(
                "dagster-user-deployments.deployments.0.codeServerArgs", ["-m", "ml.tracking", "-a", "defs"]
            ),
            "compose's code location serves",
        ),
        (_set("dagster-user-deployments.deployments.0.name", "odds"), "compose names the location 'oddly'"),
        (
            _set("dagster-user-deployments.deployments.0.image.repository", "registry.example.com/other"),
            "is not the compose image oddly-odds",
        ),
        (_set("dagster-user-deployments.deployments.0.env.ODDLY_HOME", DELETE), "without ODDLY_HOME"),
        (
            _set("dagster-user-deployments.deployments.0.env.ODDLY_WAREHOUSE", "x"),
            "ODDLY_WAREHOUSE is not a variable",
        ),
        (
            _set("dagster-user-deployments.deployments.0.envSecrets", [{"name": "oddly-envs"}]),
            "Secret oddly-envs is not in secrets.example.yaml",
        ),
        (
            _set("dagster-user-deployments.deployments.0.volumeMounts.0.mountPath", "/data"),
            "is not a mounted volume",
        ),
        (
            _set("dagster-user-deployments.deployments.0.volumes.0.persistentVolumeClaim.claimName", "home"),
            "not the shared claim",
        ),
        (
            _set("dagster-user-deployments.deployments.0.env.ODDLY_CONFIG_FILE", "/etc/feeds/oddly.yaml"),
            "ODDLY_CONFIG_FILE /etc/feeds/oddly.yaml is not in a mounted ConfigMap",
        ),
        (
            _set("dagster-user-deployments.deployments.0.env.ODDLY_CONFIG_FILE", DELETE),
            "no ODDLY_CONFIG_FILE",
        ),
        (
            _set("dagsterDaemon.env.DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", "60"),
            "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS is 60, not",
        ),
        (_set("dagsterDaemon.sensors.numWorkers", 2), "the daemon's sensors differ"),
        (
            _set("dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns", 1),
            "maxConcurrentRuns",
        ),
        (_set("additionalInstanceConfig", {}), "the concurrency pools differ"),
        (_set("retention.enabled", False), "the tick retention differs"),
        (_set("global.dagsterHome", "/opt/dagster/dagster_home"), "is not the image's DAGSTER_HOME"),
        (_set("runLauncher.type", "CeleryK8sRunLauncher"), "not launched by the K8sRunLauncher"),
        (
            _set("dagster-user-deployments.deployments.0.podSecurityContext.runAsUser", 1000),
            "runs as 1000 (fsGroup 10001), not the image's user 10001",
        ),
    ],
)
def test_helm_check_reports(
    values: dict[str, Any],
    k8s_services: list[dict[str, Any]],
    secrets: list[dict[str, Any]],
    compose: dict[str, Any],
    instructions: list[Instruction],
    mutate: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    broken = copy.deepcopy(values)
    mutate(broken)
    problems = check_helm(broken, k8s_services, secrets, compose, instructions)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("index", "mutate", "expected"),
    [
        (1, _set("spec.template.spec.containers.0.command.6", "8502"), "serves on 8502, declares [8501]"),
        (1, _set("spec.template.spec.containers.0.image", "oddly-odds:latest"), "is not the code location's"),
        (
            3,
            _set("spec.template.spec.containers.0.command.9", "4"),
            "runs `mlflow server --default-artifact-root",
        ),
        (
            5,
            _set("spec.template.spec.containers.0.envFrom", [{"secretRef": {"name": "oddly-env"}}]),
            "without ODDLY_TELEGRAM_BOT_TOKEN",
        ),
        (6, _set("spec.replicas", 2), "exactly one replica"),
        (6, _set("spec.template.spec.containers.0.env.0.value", "/home/oddly"), "is not a mounted volume"),
        (
            3,
            _set("spec.template.spec.containers.0.env.0.valueFrom.secretKeyRef.key", "MLFLOW_URI"),
            "Secret oddly-env has no key MLFLOW_URI",
        ),
        (2, _set("spec.ports.0.targetPort", 8502), "no Service targets its port 8501"),
    ],
)
def test_k8s_services_check_reports(
    values: dict[str, Any],
    k8s_services: list[dict[str, Any]],
    secrets: list[dict[str, Any]],
    compose: dict[str, Any],
    instructions: list[Instruction],
    index: int,
    mutate: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    broken = copy.deepcopy(k8s_services)
    mutate(broken[index])
    problems = check_helm(values, broken, secrets, compose, instructions)
    assert any(expected in p for p in problems), problems


def test_secret_keys_are_settings(secrets: list[dict[str, Any]]) -> None:
    keys = secret_keys(secrets)
    assert keys["oddly-env"] | keys["oddly-telegram"] <= SETTINGS_VARIABLES | feed_key_variables()
    assert keys["dagster-postgresql-secret"] == {"postgresql-password"}  # the chart's key
