#!/usr/bin/env python3
"""Extracts MediaMTX's contract, release by release, from a clone of github bluenviron/mediamtx.

For the latest patch of every minor release from v1.0 on (or the tags given), it writes
releases/<tag>.json beside this script with:

- config: the keys of that release's default mediamtx.yml (top level and pathDefaults); MediaMTX
  refuses a config file with a key it does not know, so these are the keys a written config may use;
- operations: every API operation of its openapi.yaml ("METHOD /path/{param}") with its
  parameters, request body schema and response schema per status code;
- schemas: every schema of openapi.yaml with its properties and their types (or its enum);
- source: what the Go source says where openapi.yaml is silent: whether replacing a path that does
  not exist is an error, and the HTTP status of "path not found" per handler; the signals it
  shuts down gracefully on (internal/core/core.go), and whether it starts external commands
  (runOnInit, …) in process groups of their own (internal/externalcmd).

Only these lists are kept in the repository, never MediaMTX's files (MIT licence, see README.md).

Usage: extract.py GIT_DIR [TAG ...]     (needs Python 3 and PyYAML: apt-get install python3-yaml)
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OPENAPI_CANDIDATES = ["api/openapi.yaml", "apidocs/openapi.yaml"]
HTTP_METHODS = ["get", "post", "patch", "put", "delete"]


def git(git_dir, *args, check=True):
    return subprocess.run(
        ["git", "--git-dir", git_dir, *args], check=check, capture_output=True, text=True
    ).stdout


def latest_patches(git_dir):
    """The highest vX.Y.Z tag of every minor release with X >= 1."""
    best = {}
    for tag in git(git_dir, "tag", "--list", "v*").split():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", tag)
        if not match:
            continue
        major, minor, patch = map(int, match.groups())
        if major >= 1 and best.get((major, minor), (-1, ""))[0] < patch:
            best[(major, minor)] = (patch, tag)
    return [best[key][1] for key in sorted(best)]


def config_keys(text):
    document = yaml.safe_load(text)
    defaults = document.get("pathDefaults")
    return {
        "top_level": sorted(document),
        "path_defaults": sorted(defaults) if isinstance(defaults, dict) else None,
    }


def ref_name(ref):
    return ref.rsplit("/", 1)[-1]


def type_of(schema):
    """A short type description: boolean, string, array<Path>, PathSource|null, oneOf<A|B>."""
    if schema is None:
        return None
    if "$ref" in schema:
        text = ref_name(schema["$ref"])
    elif "allOf" in schema and len(schema["allOf"]) == 1:
        text = type_of(schema["allOf"][0])
    elif "oneOf" in schema:
        text = "oneOf<" + "|".join(type_of(s) for s in schema["oneOf"]) + ">"
    elif schema.get("type") == "array":
        text = "array<" + (type_of(schema.get("items")) or "any") + ">"
    else:
        text = schema.get("type", "any")
    if schema.get("nullable"):
        text += "|null"
    return text


def schemas_of(openapi):
    out = {}
    for name, schema in sorted(openapi.get("components", {}).get("schemas", {}).items()):
        entry = {}
        if "properties" in schema:
            entry["properties"] = {
                prop: type_of(sub) for prop, sub in sorted(schema["properties"].items())
            }
        if "enum" in schema:
            entry["enum"] = [str(v) for v in schema["enum"]]
        if not entry:
            entry["type"] = type_of(schema)
        out[name] = entry
    return out


def body_schema(holder):
    content = (holder or {}).get("content", {}).get("application/json")
    return type_of(content.get("schema")) if content else None


def operations_of(openapi):
    out = {}
    for path, item in sorted(openapi.get("paths", {}).items()):
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            out[f"{method.upper()} {path}"] = {
                "parameters": {
                    p["name"]: p["in"]
                    for p in operation.get("parameters", []) + item.get("parameters", [])
                },
                "request": body_schema(operation.get("requestBody")),
                "responses": {
                    str(code): body_schema(response)
                    for code, response in sorted(operation.get("responses", {}).items())
                },
            }
    return out


def go_function(source, receiver_pattern, name):
    """The text of Go function `name` (method on a receiver matching the pattern), or None."""
    match = re.search(r"^func \(" + receiver_pattern + r"\) " + name + r"\(.*?^}\n", source,
                      re.S | re.M)
    return match.group(0) if match else None


GO_SIGNALS = {"os.Interrupt": "SIGINT", "syscall.SIGINT": "SIGINT", "syscall.SIGTERM": "SIGTERM"}


def graceful_signals(git_dir, tag):
    """The signals core.go's run loop shuts down gracefully on (`signal.Notify(interrupt, …)`,
    Linux branches included); any other termination signal kills MediaMTX at once."""
    core = git(git_dir, "show", f"{tag}:internal/core/core.go")
    names = re.findall(r"signal\.Notify\(interrupt,\s*([^)]*)\)", core)
    found = {GO_SIGNALS.get(n.strip(), n.strip()) for args in names for n in args.split(",")}
    return sorted(found)


def commands_in_own_process_group(git_dir, tag):
    """Whether external commands (runOnInit, …) get a process group of their own on Unix
    (`Setpgid: true`): then a signal to MediaMTX's group does not reach them."""
    found = git(git_dir, "grep", "-l", "Setpgid: true", tag, "--", "internal/externalcmd",
                check=False)
    return bool(found.strip())


def source_facts(git_dir, tag, operations):
    """What the Go source says about missing paths (openapi.yaml does not say it everywhere)."""
    conf = git(git_dir, "show", f"{tag}:internal/conf/conf.go")
    replace = go_function(conf, r"conf \*Conf", "ReplacePath")
    add = go_function(conf, r"conf \*Conf", "AddPath") or ""
    not_found = re.search(r'ErrPathNotFound\s*=\s*errors\.New\("([^"]+)"\)', conf)
    exists = re.search(r'Errorf\("([^"]*exists[^"]*)"\)', add)
    facts = {
        "conf_go": "internal/conf/conf.go",
        # null where there is no ReplacePath (no replace operation before the v3 API)
        "replace_creates_missing_path": None if replace is None
        else "not found" not in replace and "ErrPathNotFound" not in replace,
        "path_not_found_message": not_found.group(1) if not_found else "path not found",
        "path_already_exists_message": exists.group(1) if exists else None,
        "missing_path_status": {},
        "graceful_signals": graceful_signals(git_dir, tag),
        "commands_in_own_process_group": commands_in_own_process_group(git_dir, tag),
    }
    # The API handlers: the status written for an error of the call that can report a missing
    # path (the first writeError after the call, or 404 where the handler maps ErrPathNotFound).
    handlers = {
        "POST /v3/config/paths/replace/{name}": (
            "onConfigPathsReplace", ["ReplacePath", "APIConfigPathsReplace"]),
        "DELETE /v3/config/paths/delete/{name}": (
            "onConfigPathsDelete", ["RemovePath", "APIConfigPathsDelete"]),
        "GET /v3/paths/get/{name}": ("onPathsGet", ["APIPathsGet"]),
    }
    for operation, (handler, calls) in handlers.items():
        if operation not in operations:
            continue
        files = git(git_dir, "grep", "-l", "-F", f") {handler}(ctx", tag, "--", "internal",
                    check=False).split()
        if not files:
            continue
        body = go_function(git(git_dir, "show", files[0]), r"a \*[Aa][Pp][Ii]", handler) or ""
        found = [i for i in (body.lower().find(c.lower() + "(") for c in calls) if i >= 0]
        status = None
        if found:
            at = min(found)
            after_call = body[at:]
            if "StatusNotFound" in after_call:
                status = 404
            else:
                first = re.search(r"writeError\(ctx, http\.Status(\w+)", after_call)
                status = {"BadRequest": 400, "InternalServerError": 500}.get(
                    first.group(1) if first else "")
        facts["missing_path_status"][operation] = {
            "file": files[0].split(":", 1)[1],
            "status": status,
        }
    return facts


def extract(git_dir, tag):
    commit = git(git_dir, "rev-parse", f"{tag}^{{commit}}").strip()
    date = git(git_dir, "log", "-1", "--format=%cs", commit).strip()
    files = set(git(git_dir, "ls-tree", "-r", "--name-only", commit).split())
    openapi_path = next(p for p in OPENAPI_CANDIDATES if p in files)
    openapi = yaml.safe_load(git(git_dir, "show", f"{commit}:{openapi_path}"))
    operations = operations_of(openapi)
    return {
        "tag": tag,
        "commit": commit,
        "date": date,
        "files": {"config": "mediamtx.yml", "openapi": openapi_path},
        "config": config_keys(git(git_dir, "show", f"{commit}:mediamtx.yml")),
        "operations": operations,
        "schemas": schemas_of(openapi),
        "source": source_facts(git_dir, commit, operations),
    }


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    git_dir = sys.argv[1]
    tags = sys.argv[2:] or latest_patches(git_dir)
    out_dir = HERE / "releases"
    out_dir.mkdir(exist_ok=True)
    index = []
    for tag in tags:
        release = extract(git_dir, tag)
        (out_dir / f"{tag}.json").write_text(json.dumps(release, indent=1) + "\n")
        index.append({"tag": tag, "commit": release["commit"], "date": release["date"],
                      "openapi": release["files"]["openapi"]})
        print(f"{tag} {release['commit']} {release['date']}", file=sys.stderr)
    (HERE / "releases.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
