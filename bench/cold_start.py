"""Cold start of the stream indexer as deployed: ``import app`` from the built layer, in fresh Python 3.13s.

What is timed, in each fresh interpreter (``time.perf_counter`` around the statement, inside
the child): ``import app`` of ``functions/stream_indexer/app.py``, which imports
``ddbsync.indexer`` and builds the handler (``make_handler()``: settings from the
environment, the OpenSearch client, the SQS client, Powertools' Logger, Metrics and Tracer)
as Lambda's init does. The parent also times each whole process (interpreter start and exit
included). Variants, in alternating order (each round rotates which goes first):

* ``bytecode``: the layer as ``layers/ddbsync/build-layer.sh`` builds it now, with its
  cpython-313 ``.pyc`` files;
* ``source``: the same layer with every ``.pyc`` and ``__pycache__`` removed, i.e. as it was
  built before the build compiled bytecode: Python compiles every module at every start;
* ``baseline``: ``import boto3, json`` alone, the floor any Python Lambda with boto3 pays;
* ``before`` (only with ``--before-ref REF``): the layer that REF's own build-layer.sh
  builds, with REF's ``app.py`` (e.g. the commit before the bytecode change, which also
  shipped the parts of Powertools and amazon-ion that the layer now leaves out, imported
  boto3 and built the SQS client at cold start, with the garbage collector on), and
  ``before-bytecode``, the same compiled as the build now compiles: the difference between
  the two is the bytecode's part, the rest is the code's.

As deployed:

* the layer is copied to a directory of its own (``/opt/python`` in Lambda), the handler
  module to another (``/var/task``), and the children import with
  ``sys.path = [task, layer, runtime]``, Lambda's order;
* no bytecode is written: Lambda's ``/opt`` is read-only, so a module without a ``.pyc`` is
  compiled again at every cold start. The children run with ``-B``
  (``sys.dont_write_bytecode``) and ``-I`` (no PYTHON* variables, no user site-packages);
* boto3, botocore and s3transfer are not in the layer (the Lambda runtime provides them):
  they are installed with this Python 3.13's pip, at the versions of ``.venv`` (uv.lock),
  into a ``runtime`` directory (``/var/runtime``), with pip's usual ``.pyc`` files, as the
  runtime's are. Their dependencies jmespath, python-dateutil, six and urllib3 too, for the
  baseline; with the layer, the layer's copies come first, as in Lambda;
* the environment: the function's variables from ``template.yaml`` (Globals and
  StreamIndexerFunction; parameters at their defaults, or, for those without one, bench
  values; resources as fake names), plus what Lambda sets (``LAMBDA_TASK_ROOT``,
  ``AWS_LAMBDA_FUNCTION_NAME``, region, fake credentials, the X-Ray daemon address of
  ``Tracing: Active``...): Powertools' Tracer is on and patches modules as in Lambda.
  Building the handler makes no network call.

Not modelled: Lambda's init sandbox (its own CPU, whose share Lambda sets by the memory
size, 1,769 MB buying one vCPU, so absolute times there differ; the ratios are what carries
over), the disk and page cache
(a first untimed run of each variant warms this machine's page cache; Lambda's first read of
the layer may be slower), and the architecture: the layer is
built for this machine (x86_64 here) instead of arm64, which changes only the four native
extensions (orjson, charset-normalizer, wrapt, amazon-ion); the Python files and their
``.pyc`` are the same.

The runtime's own bootstrap runs first, as in Lambda: before it imports the handler module,
Lambda's Python runtime (awslambdaric: ``bootstrap.py``, ``lambda_runtime_client.py``,
``lambda_runtime_marshaller.py``) has imported importlib, json, logging, os, time,
traceback, http, http.client, decimal and math, so every child imports those
(:data:`BOOTSTRAP_IMPORTS`) before the timed statement, the baseline's too. The runtime's
simplejson (not in the standard library) is left out, and so is the bootstrap's own code.
``--no-bootstrap`` times from a bare interpreter instead (the figures before this was
modelled, which counted those modules against the handler).

Target: ``bytecode`` under 300 ms (median). Exit 1 if missed. The slowest imports of the
``bytecode`` variant (``python3.13 -X importtime``, median over runs) are printed after the
figures.

Usage (from the repository root)::

    PYTHONPATH=layers/ddbsync:. .venv/bin/python bench/cold_start.py [--quick] [--runs N]
        [--layer DIR] [--runtime DIR] [--before-ref REF] [--python PATH_TO_PYTHON3.13]

``--layer DIR``: a built layer (the directory holding ``python/``, or ``python/`` itself)
instead of building one; it must hold native code for this machine. ``--runtime DIR``: a
directory from an earlier run's ``--keep`` to skip the pip download of boto3 and botocore.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.support import load_template

from _common import machine, median

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 300.0
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")

# Template parameters without a default, and resources the function's variables name.
BENCH_PARAMETERS = {
    "OpenSearchEndpoint": "https://search-ddbsync-bench-abcdefghij.eu-west-1.es.amazonaws.com",
    "IndexAlias": "products",
    "PartitionKey": "pk",
}
BENCH_RESOURCES = {
    "RecordDlq": "https://sqs.eu-west-1.amazonaws.com/123456789012/ddbsync-bench-RecordDlq",
    "DeadLetterBucket": "ddbsync-bench-deadletterbucket-abcdefgh",
}

# What Lambda's Python runtime has imported before the handler module (module docstring).
BOOTSTRAP_IMPORTS = "importlib, json, logging, os, time, traceback, http, http.client, decimal, math"

# Nothing imported before the timed statement but sys, time and the bootstrap's modules (argv[5]).
_CHILD = """
import sys, time
task, layer, runtime, what, bootstrap = sys.argv[1:6]
if bootstrap:
    exec("import " + bootstrap)
sys.path[:0] = [p for p in (task, layer, runtime) if p]
t0, c0 = time.perf_counter(), time.process_time()
if what == "app":
    import app
else:
    import boto3
    import json
t1, c1 = time.perf_counter(), time.process_time()
import json, os
from_layer = compiled = 0
for module in list(sys.modules.values()):
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) or ""
    if layer and origin.startswith(layer + os.sep) and origin.endswith(".py"):
        from_layer += 1
        compiled += os.path.exists(spec.cached or "")
print(json.dumps({"import_s": t1 - t0, "cpu_s": c1 - c0, "modules": len(sys.modules),
                  "from_layer": from_layer, "with_pyc": compiled}))
"""




def template_environment() -> tuple[dict[str, str], int]:
    """The stream indexer's environment variables as template.yaml sets them, and its memory."""
    template = load_template(ROOT / "template.yaml")
    glob = template.get("Globals", {}).get("Function", {})
    function = template["Resources"]["StreamIndexerFunction"]["Properties"]
    variables = {
        **glob.get("Environment", {}).get("Variables", {}),
        **function.get("Environment", {}).get("Variables", {}),
    }
    env: dict[str, str] = {}
    for name, value in variables.items():
        if isinstance(value, dict) and set(value) == {"Ref"}:
            ref = value["Ref"]
            param = template.get("Parameters", {}).get(ref)
            if param is not None and "Default" in param:
                value = param["Default"]
            elif ref in BENCH_PARAMETERS:
                value = BENCH_PARAMETERS[ref]
            elif ref in BENCH_RESOURCES:
                value = BENCH_RESOURCES[ref]
            else:
                raise SystemExit(f"template.yaml: {name} is !Ref {ref}; give the bench a value for it")
        elif isinstance(value, dict):
            raise SystemExit(f"template.yaml: {name} is {value}; the bench reads plain values and !Ref only")
        env[name] = str(value)
    memory = int(function.get("MemorySize", glob.get("MemorySize", 128)))
    return env, memory


def lambda_environment(task: Path, runtime: Path) -> dict[str, str]:
    """A clean environment: the template's variables plus what Lambda sets (no real credentials)."""
    variables, memory = template_environment()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task),
        "LAMBDA_RUNTIME_DIR": str(runtime),
        "_HANDLER": "app.handler",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": "ddbsync-bench-stream-indexer",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ddbsync-bench-stream-indexer",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/02/[$LATEST]0123456789abcdef",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        # No ~/.aws of this machine.
        "AWS_CONFIG_FILE": str(task / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(task / "no-aws-credentials"),
        # Tracing: Active.
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
        "_AWS_XRAY_DAEMON_PORT": "2000",
    }
    env.update(variables)
    return env


def find_python313(given: str | None) -> str:
    candidates = [given] if given else []
    if not given:
        if os.environ.get("DDBSYNC_LAYER_BYTECODE_PYTHON"):
            candidates.append(os.environ["DDBSYNC_LAYER_BYTECODE_PYTHON"])
        candidates.append("python3.13")
        try:
            pyenv = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True)
            pyenv_root = pyenv.stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pyenv_root = ""
        if pyenv_root:
            versions = sorted(Path(pyenv_root, "versions").glob("3.13*"), reverse=True)
            candidates += [str(v / "bin" / "python3.13") for v in versions]
    for candidate in candidates:
        try:
            tag = subprocess.run(
                [candidate, "-c", "import sys; print(sys.implementation.cache_tag)"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if tag == "cpython-313":
            found = shutil.which(candidate) or candidate
            return str(Path(found).resolve()) if os.sep in found else found
    raise SystemExit("no Python 3.13 found (PATH, pyenv, DDBSYNC_LAYER_BYTECODE_PYTHON): give --python")


def host_arch() -> tuple[str, int]:
    """build-layer.sh's DDBSYNC_LAYER_ARCH for this machine and its ELF e_machine."""
    m = platform.machine().lower()
    if m in ("x86_64", "amd64"):
        return "x86_64", 62
    if m in ("aarch64", "arm64"):
        return "arm64", 183
    raise SystemExit(f"unsupported machine {m}")


def uv_path() -> str:
    local = ROOT / ".uv" / "bin" / "uv"
    if local.exists():
        return str(local)
    found = shutil.which("uv")
    if not found:
        raise SystemExit("uv not found: run make setup")
    return found


def build_layer(project: Path, out: Path, python313: str) -> Path:
    """Run project's layers/ddbsync/build-layer.sh for this machine's architecture into out."""
    arch, _ = host_arch()
    env = {
        **os.environ,
        "ARTIFACTS_DIR": str(out),
        "DDBSYNC_PROJECT_ROOT": str(project),
        "DDBSYNC_LAYER_ARCH": arch,
        "DDBSYNC_LAYER_BYTECODE_PYTHON": python313,
        "DDBSYNC_LAYER_REQUIRE_BYTECODE": "1",
        "PIP_PYTHON": sys.executable,
        "UV": uv_path(),
    }
    done = subprocess.run(
        ["bash", str(project / "layers" / "ddbsync" / "build-layer.sh")],
        env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"build-layer.sh failed:\n{done.stdout}{done.stderr}")
    for line in done.stdout.splitlines():
        if "WARNING" in line or "bytecode:" in line or "done:" in line:
            print(f"  {line}")
    return out / "python"


def check_native_code(layer: Path) -> None:
    """The layer's extensions must load here: built for this machine, not for Lambda's arm64."""
    _, e_machine = host_arch()
    for so in layer.rglob("*.so"):
        head = so.read_bytes()[:20]
        if head[:4] == b"\x7fELF" and struct.unpack("<H", head[18:20])[0] != e_machine:
            raise SystemExit(
                f"{so} is not for this machine: build the layer with DDBSYNC_LAYER_ARCH={host_arch()[0]}"
            )


def install_runtime(python313: str, target: Path) -> None:
    """boto3 and co at .venv's (uv.lock's) versions, with pip's .pyc, as Lambda's runtime has them."""
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in RUNTIME_PACKAGES]
    done = subprocess.run(
        [python313, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--root-user-action=ignore", "--no-deps", "--only-binary=:all:", "--target", str(target), *pins],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"pip could not install {pins} for Python 3.13:\n{done.stdout}{done.stderr}")
    print(f"  runtime: {' '.join(pins)}")


def layer_bytes(layer: Path) -> tuple[int, int, int]:
    """Sum of file sizes, files, .pyc files."""
    files = [p for p in layer.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files), sum(p.suffix == ".pyc" for p in files)


def strip_bytecode(layer: Path) -> None:
    for cache in sorted(layer.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    for pyc in layer.rglob("*.pyc"):
        pyc.unlink()


def run_child(
    python313: str, env: dict[str, str], task: str, layer: str, runtime: str, what: str, bootstrap: str
) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(
        [python313, "-I", "-B", "-c", _CHILD, task, layer, runtime, what, bootstrap],
        env=env, capture_output=True, text=True, check=False, cwd=task or None,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


_APP_MARKER = "-- import app --"


def importtime(python313: str, env: dict[str, str], task: str, layer: str, runtime: str, runs: int,
               bootstrap: str
               ) -> tuple[list[tuple[str, float]], list[tuple[str, float]], list[tuple[str, float]]]:
    """Median self and cumulative microseconds per module of ``import app`` over fresh runs, and
    the median sum of self times per top-level package (the standard library as one).

    The ``bootstrap`` modules are imported first and not counted (a marker line on stderr
    separates them from ``import app``)."""
    selfs: dict[str, list[int]] = defaultdict(list)
    cums: dict[str, list[int]] = defaultdict(list)
    packages: dict[str, list[int]] = defaultdict(list)
    preload = f"import {bootstrap}; " if bootstrap else ""
    code = (f"import sys; {preload}sys.stderr.write('{_APP_MARKER}\\n'); "
            f"sys.path[:0] = {[task, layer, runtime]!r}; import app")
    for _ in range(runs):
        done = subprocess.run(
            [python313, "-I", "-B", "-X", "importtime", "-c", code],
            env=env, capture_output=True, text=True, check=True, cwd=task,
        )
        per_package: dict[str, int] = defaultdict(int)
        lines = done.stderr.splitlines()
        for line in lines[lines.index(_APP_MARKER) + 1:]:
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cum_us, name = line[len("import time:"):].split("|")
            selfs[name.strip()].append(int(self_us))
            cums[name.strip()].append(int(cum_us))
            top = name.strip().split(".")[0]
            stdlib = top.lstrip("_") in sys.stdlib_module_names or top in sys.stdlib_module_names
            per_package["(standard library)" if stdlib else top] += int(self_us)
        for name, us in per_package.items():
            packages[name].append(us)
    top_self = sorted(((n, median(v)) for n, v in selfs.items()), key=lambda x: -x[1])[:12]
    top_cum = sorted(((n, median(v)) for n, v in cums.items()), key=lambda x: -x[1])[:15]
    by_package = sorted(((n, median(v)) for n, v in packages.items()), key=lambda x: -x[1])[:12]
    return top_self, top_cum, by_package


def add_before_layers(ref: str, work: Path, python313: str, layers: dict[str, Path]) -> None:
    """Build ``ref``'s layer ("before", as it shipped) and the same compiled ("before-bytecode")."""
    print(f"layer 'before': building {ref}'s layers/ddbsync/build-layer.sh")
    tree = work / "before-tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "layers/ddbsync",
                              "functions/stream_indexer/app.py", "pyproject.toml", "uv.lock"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    before = build_layer(tree, work / "before-build", python313)
    check_native_code(before)
    layers["before"] = work / "opt-before" / "python"
    shutil.copytree(before, layers["before"], symlinks=True)
    # The same layer compiled as the build now does: what the bytecode alone brings.
    layers["before-bytecode"] = work / "opt-before-bytecode" / "python"
    shutil.copytree(before, layers["before-bytecode"], symlinks=True)
    subprocess.run(
        [python313, "-m", "compileall", "-q", "-j", "0", "-o", "0", "--invalidation-mode",
         "unchecked-hash", str(layers["before-bytecode"])],
        env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, check=False,
    )


def print_results(
    results: dict[str, list[dict[str, Any]]], variants: dict[str, tuple[str, str, str]], names: list[str]
) -> bool:
    """The table of medians and the ratios; True when the target is met."""

    def med(name: str, key: str) -> float:
        return median([row[key] for row in results[name]])

    print(f"\nrounds: {len(results[names[0]])}, each variant once per round in rotating order; medians in ms "
          "(import: wall time inside the child; cpu: its process time; process: the whole child)")
    print(f"{'variant':24} {'import':>8} {'q1..q3':>15} {'cpu':>8} {'process':>8} {'layer modules':>14}")
    for name in names:
        times = sorted(row["import_s"] * 1000 for row in results[name])
        q1, q3 = times[len(times) // 4], times[(3 * len(times)) // 4]
        last = results[name][-1]
        modules = f"{last['with_pyc']}/{last['from_layer']} .pyc" if variants[name][1] else "-"
        label = "baseline boto3+json" if name == "baseline" else f"{name} import app"
        print(f"{label:24} {med(name, 'import_s') * 1000:8.1f} {q1:7.1f}..{q3:6.1f} "
              f"{med(name, 'cpu_s') * 1000:8.1f} {med(name, 'wall_s') * 1000:8.1f} {modules:>14}")
    pairs = [("bytecode", "baseline"), ("source", "baseline"), ("source", "bytecode")]
    if "before" in results:
        pairs += [("before", "bytecode"), ("before", "before-bytecode"), ("before-bytecode", "bytecode"),
                  ("before", "baseline")]
    for a, b in pairs:
        per_round = [x["import_s"] / y["import_s"] for x, y in zip(results[a], results[b], strict=True)]
        print(f"ratio {a}/{b}: {med(a, 'import_s') / med(b, 'import_s'):.2f} of the medians, "
              f"{median(per_round):.2f} median of the rounds' ratios, "
              f"{med(a, 'cpu_s') / med(b, 'cpu_s'):.2f} in cpu")
    ours = med("bytecode", "import_s") * 1000
    met = ours < TARGET_MS
    verdict = "MET" if met else "MISSED"
    print(f"target: import app with bytecode < {TARGET_MS:.0f} ms: {ours:.1f} ms, {verdict}")
    return met


def print_profile(
    python313: str, env: dict[str, str], task: Path, layer: Path, runtime: Path, runs: int, bootstrap: str
) -> None:
    """Where the import time of the bytecode layer goes (python -X importtime)."""
    top_self, top_cum, by_package = importtime(
        python313, env, str(task), str(layer), str(runtime), runs, bootstrap
    )
    print(f"\nslowest imports, bytecode layer (python -X importtime, median of {runs} runs; "
          "app's self time is mostly make_handler()):")
    print("  by self time:")
    for name, us in top_self:
        print(f"    {us / 1000:8.1f} ms  {name}")
    print("  by cumulative time:")
    for name, us in top_cum:
        print(f"    {us / 1000:8.1f} ms  {name}")
    print("  self time summed per top-level package:")
    for name, us in by_package:
        print(f"    {us / 1000:8.1f} ms  {name}")


def given_or_built_layer(layer: Path | None, work: Path, python313: str) -> Path:
    """The layer's python/ directory: the one given, or built now for this machine."""
    if layer is not None:
        given = layer.resolve()
        built = given / "python" if (given / "python").is_dir() else given
        print(f"layer: {built} (given)")
        return built
    print("layer: building with layers/ddbsync/build-layer.sh (this machine's architecture)")
    return build_layer(ROOT, work / "build", python313)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="7 rounds instead of 21, 3 importtime runs")
    parser.add_argument("--runs", type=int, default=None, help="rounds (each runs every variant once)")
    parser.add_argument("--layer", type=Path, default=None, help="a built layer instead of building one")
    parser.add_argument("--runtime", type=Path, default=None, help="boto3 & co. from an earlier --keep")
    parser.add_argument("--before-ref", default=None, help="also time the layer this git ref builds")
    parser.add_argument("--python", default=None, help="the Python 3.13 to run (default: PATH, pyenv)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and print it")
    parser.add_argument("--no-bootstrap", action="store_true",
                        help="do not import the Lambda runtime's modules first (BOOTSTRAP_IMPORTS)")
    args = parser.parse_args()
    runs = args.runs or (7 if args.quick else 21)
    bootstrap = "" if args.no_bootstrap else BOOTSTRAP_IMPORTS
    profile_runs = 3 if args.quick else 7

    python313 = find_python313(args.python)
    version = subprocess.run([python313, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="ddbsync-cold-start-"))
    try:
        print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"children: Python {version} ({python313}), -I -B; work dir {work}")
        print("imported first, as Lambda's runtime bootstrap does: " + (bootstrap or "nothing"))
        built = given_or_built_layer(args.layer, work, python313)
        check_native_code(built)
        layers = {"bytecode": work / "opt-bytecode" / "python", "source": work / "opt-source" / "python"}
        shutil.copytree(built, layers["bytecode"], symlinks=True)
        shutil.copytree(built, layers["source"], symlinks=True)
        strip_bytecode(layers["source"])
        if args.before_ref:
            add_before_layers(args.before_ref, work, python313, layers)
        if args.runtime is not None:
            runtime = args.runtime.resolve()
        else:
            runtime = work / "runtime"
            install_runtime(python313, runtime)
        # The handler module (/var/task): this tree's, and for 'before' the ref's own.
        task = work / "task"
        task.mkdir()
        shutil.copy2(ROOT / "functions" / "stream_indexer" / "app.py", task / "app.py")
        tasks = {name: task for name in layers}
        if args.before_ref:
            tasks["before"] = tasks["before-bytecode"] = work / "task-before"
            tasks["before"].mkdir()
            shutil.copy2(work / "before-tree" / "functions" / "stream_indexer" / "app.py",
                         tasks["before"] / "app.py")
        env = lambda_environment(task, runtime)
        for name, layer in layers.items():
            size, files, pycs = layer_bytes(layer)
            print(f"  layer {name:8}: {size / 2**20:5.1f} MiB unzipped, {files} files, {pycs} .pyc")
        print("environment (template.yaml): " + " ".join(
            f"{k}={v}" for k, v in sorted(template_environment()[0].items())))

        variants: dict[str, tuple[str, str, str]] = {
            name: (str(tasks[name]), str(layer), "app") for name, layer in layers.items()
        }
        variants["baseline"] = ("", "", "boto3")
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}

        def one(name: str) -> dict[str, Any]:
            task_dir, layer_dir, what = variants[name]
            return run_child(python313, env, task_dir, layer_dir, str(runtime), what, bootstrap)

        # One untimed run of each: the page cache holds every file afterwards (not Lambda's case).
        for name in variants:
            one(name)
        names = list(variants)
        for r in range(runs):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                results[name].append(one(name))

        met = print_results(results, variants, names)
        print(f"load average after the rounds: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        print_profile(python313, env, task, layers["bytecode"], runtime, profile_runs, bootstrap)
        return 0 if met else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
