#!/usr/bin/env python3
"""Which extension modules load in subinterp's interpreters, and how.

Run through scripts/probe-extensions.sh, which makes a throwaway venv per
Python version and writes docs/extensions.md.  The steps, each run by the
probe venv's Python (this file puts the repository on ``sys.path``, so the
in-place build of subinterp for that Python is the one probed):

    probe-extensions.py install OUT.json      pip-install PACKAGES into this
                                              venv, recording how each went
    probe-extensions.py probe INSTALL.json OUT.json
                                              probe every module of PACKAGES
                                              and of the standard library
    probe-extensions.py report RESULT.json... print the Markdown report
    probe-extensions.py one KIND MODULE [SMOKE]
                                              one probe, in a fresh process
                                              (used by ``probe``)

Each probe runs in a process of its own (a crash or hang is recorded as
such, and nothing one probe loaded can change another's outcome):

    main          import in the main interpreter
    isolated      import in subinterp.create() (own GIL; the default)
    legacy        import in subinterp.create(config="legacy") (shares the
                  main GIL; single-phase modules are allowed)
    legacy2       import in two legacy interpreters, one after the other;
                  the outcome of the second ("once per process" modules
                  fail there)
    main+legacy   import in the main interpreter, then in a legacy one

After a successful import each probe runs the module's smoke test (a few
lines of ordinary use) in the same interpreter.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib.machinery
import importlib.util
import json
import os
import platform
import re
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KINDS = ("main", "isolated", "legacy", "legacy2", "main+legacy")

# (pip requirement, [(module to import, smoke test or None)]).  The module
# is the one that loads the package's compiled code; the smoke test is
# run after it, in the same interpreter.
PACKAGES = [
    ("numpy", [("numpy", "import numpy\nassert numpy.arange(10).sum() == 45")]),
    ("msgspec", [("msgspec", "import msgspec\n"
                  "assert msgspec.json.decode(msgspec.json.encode({'a': [1]})) == {'a': [1]}")]),
    ("orjson", [("orjson", "import orjson\nassert orjson.loads(orjson.dumps({'a': 1})) == {'a': 1}")]),
    ("pydantic", [
        ("pydantic_core", "import pydantic_core\n"
         "assert pydantic_core.SchemaValidator({'type': 'int'}).validate_python('3') == 3"),
        ("pydantic", "import pydantic\n"
         "class M(pydantic.BaseModel):\n    x: int\n"
         "assert M(x='1').x == 1"),
    ]),
    ("ujson", [("ujson", "import ujson\nassert ujson.loads(ujson.dumps([1, 'a'])) == [1, 'a']")]),
    ("regex", [("regex", "import regex\nassert regex.match(r'\\p{L}+', 'abc1').group() == 'abc'")]),
    ("cryptography", [("cryptography.hazmat.bindings._rust",
                       "from cryptography.hazmat.primitives import hashes\n"
                       "h = hashes.Hash(hashes.SHA256()); h.update(b'x')\n"
                       "assert len(h.finalize()) == 32")]),
    ("lxml", [("lxml.etree", "from lxml import etree\n"
               "assert etree.fromstring(b'<a><b/></a>')[0].tag == 'b'")]),
    ("Pillow", [("PIL.Image", "from PIL import Image\n"
                 "assert Image.new('RGB', (4, 3)).size == (4, 3)")]),
    ("pandas", [("pandas", "import pandas\n"
                 "assert pandas.DataFrame({'a': [1, 2]})['a'].sum() == 3")]),
    ("scipy", [("scipy.special", "import scipy.special\n"
                "assert round(float(scipy.special.gamma(5.0))) == 24")]),
    ("psutil", [("psutil", "import psutil\nassert psutil.cpu_count() >= 1")]),
    ("pyyaml", [("yaml._yaml", "import yaml\n"
                 "assert yaml.load('a: 1', Loader=yaml.CSafeLoader) == {'a': 1}")]),
    ("markupsafe", [("markupsafe._speedups", "import markupsafe\n"
                     "assert markupsafe.escape('<') == '&lt;'")]),
    ("charset-normalizer", [("charset_normalizer.md",
                             "import charset_normalizer\n"
                             "assert charset_normalizer.from_bytes(b'hello').best() is not None")]),
    ("msgpack", [("msgpack._cmsgpack", "import msgpack\n"
                  "assert msgpack.unpackb(msgpack.packb([1, 'a'])) == [1, 'a']")]),
    ("zstandard", [("zstandard", "import zstandard\n"
                    "c = zstandard.ZstdCompressor().compress(b'x' * 100)\n"
                    "assert zstandard.ZstdDecompressor().decompress(c) == b'x' * 100")]),
    ("aiohttp", [
        ("multidict._multidict", "import multidict\n"
         "assert multidict.MultiDict([('a', 1), ('a', 2)]).getall('a') == [1, 2]"),
        ("yarl._quoting_c", "import yarl\n"
         "assert yarl.URL('http://h/p?q=1').query['q'] == '1'"),
        ("frozenlist._frozenlist", "import frozenlist\n"
         "assert list(frozenlist.FrozenList([1])) == [1]"),
        ("aiohttp._http_parser", "import aiohttp\nassert aiohttp.ClientSession"),
    ]),
    ("cffi", [("_cffi_backend", "import cffi\n"
               "assert cffi.FFI().sizeof('int') == 4")]),
    ("greenlet", [("greenlet", "import greenlet\n"
                   "assert greenlet.greenlet(lambda: 5).switch() == 5")]),
    ("bcrypt", [("bcrypt", "import bcrypt\n"
                 "h = bcrypt.hashpw(b'pw', bcrypt.gensalt(4))\n"
                 "assert bcrypt.checkpw(b'pw', h)")]),
    ("simplejson", [("simplejson._speedups", "import simplejson\n"
                     "assert simplejson.loads('[1]') == [1]")]),
    ("sqlalchemy", [("sqlalchemy", "import sqlalchemy\n"
                     "e = sqlalchemy.create_engine('sqlite://')\n"
                     "with e.connect() as c:\n"
                     "    assert c.execute(sqlalchemy.text('select 1')).scalar() == 1")]),
    ("protobuf", [("google._upb._message",
                   "from google.protobuf import struct_pb2\n"
                   "s = struct_pb2.Struct(); s['a'] = 1\n"
                   "assert struct_pb2.Struct.FromString(s.SerializeToString())['a'] == 1")]),
    ("xxhash", [("xxhash", "import xxhash\nassert xxhash.xxh64(b'x').intdigest() > 0")]),
    ("rpds-py", [("rpds", "import rpds\nassert rpds.HashTrieMap({'a': 1})['a'] == 1")]),
    ("tornado", [("tornado.speedups", "import tornado.websocket")]),
]

# Smoke tests of standard library extension modules (by module name); the
# others are only imported.
STDLIB_SMOKE = {
    "_decimal": "import decimal\nassert str(decimal.Decimal(1) / 4) == '0.25'",
    "_ssl": "import ssl\nssl.create_default_context()",
    "_sqlite3": "import sqlite3\n"
                "assert sqlite3.connect(':memory:').execute('select 1').fetchone() == (1,)",
    "_ctypes": "import ctypes\nassert ctypes.sizeof(ctypes.c_int) == 4",
    "_datetime": "import datetime\nassert datetime.date(2000, 1, 2).isoformat() == '2000-01-02'",
    "_json": "import json\nassert json.loads(json.dumps({'a': [1]})) == {'a': [1]}",
    "_pickle": "import pickle\nassert pickle.loads(pickle.dumps([1])) == [1]",
    "_elementtree": "import xml.etree.ElementTree as ET\n"
                    "assert ET.fromstring('<a><b/></a>')[0].tag == 'b'",
    "_hashlib": "import hashlib\nassert len(hashlib.sha256(b'x').digest()) == 32",
    "_zoneinfo": "import zoneinfo\nzoneinfo.ZoneInfo('UTC')",
    "_socket": "import socket\nsocket.socket().close()",
    "select": "import select\nselect.select([], [], [], 0)",
    "_asyncio": "import asyncio\nassert asyncio.run(asyncio.sleep(0, 7)) == 7",
    "_curses": "import curses\nassert curses.COLOR_RED == 1",
    "readline": "import readline\nreadline.get_history_length()",
    "_tkinter": "import tkinter\nassert tkinter.TkVersion > 8",
}

# Run in the interpreter under test, as source text: describes the outcome
# of importing `module` and running `smoke` as a JSON-able value (None for
# success), the chain of exceptions (cause and context, outermost first)
# otherwise.  Catching the exception there records CPython's (or the
# module's) own message, not subinterp's explanation of it.
PROBE_SOURCE = """\
def __probe(module, smoke):
    import importlib
    try:
        importlib.import_module(module)
    except BaseException as exc:
        return ['import', __chain(exc)]
    if smoke:
        try:
            exec(smoke, {'__name__': '__probe__'})
        except BaseException as exc:
            return ['smoke', __chain(exc)]
    return None

def __chain(exc):
    out = []
    seen = set()
    while exc is not None and id(exc) not in seen and len(out) < 10:
        seen.add(id(exc))
        out.append([type(exc).__name__, str(exc)[:2000]])
        exc = exc.__cause__ or exc.__context__
    return out
"""


def probe_here(module, smoke, interp=None):
    """The outcome of one import (and smoke test), in interp or in main."""
    if interp is None:
        ns = {"__name__": "__probe_main__"}
        exec(PROBE_SOURCE, ns)
        return ns["__probe"](module, smoke)
    interp.exec(PROBE_SOURCE)
    interp.prepare_main(__module=module, __smoke=smoke)
    interp.exec("__outcome = __probe(__module, __smoke)")
    return interp.call(eval, "__outcome")


class StdlibInterpreters:
    """The standard library's own (private) interpreters module, to check
    whether a crash is subinterp's or CPython's (or the module's)."""

    def __init__(self):
        try:
            import _interpreters as mod  # 3.13+
        except ImportError:
            import _xxsubinterpreters as mod  # 3.12
        self.mod = mod

    def create(self, config):
        if hasattr(self.mod, "new_config"):
            return self.mod.create(config)
        return self.mod.create(isolated=config == "isolated")

    def probe(self, iid, module, smoke):
        # The same steps as subinterp.create() and the probe: the
        # creator's sys.path, subinterp imported.
        self.mod.run_string(
            iid, f"import sys\nsys.path[:] = {sys.path!r}\nimport subinterp\n"
            + PROBE_SOURCE + f"\n__probe({module!r}, {smoke!r})\n")

    def close(self, iid):
        self.mod.destroy(iid)


def run_one_stdlib(kind, module, smoke):
    """The same steps as run_one, with the standard library's interpreters
    (the outcome is not reported, only whether the process survives)."""
    sys.path.insert(0, REPO)
    std = StdlibInterpreters()
    iids = []
    configs = {"isolated": ["isolated"], "legacy": ["legacy"],
               "legacy2": ["legacy", "legacy"], "main+legacy": ["legacy"]}
    if kind == "main+legacy":
        probe_here(module, smoke)
    for config in configs[kind]:
        iids.append(std.create(config))
        std.probe(iids[-1], module, smoke)
    print("RESULT null", flush=True)
    for iid in iids:
        std.close(iid)


def run_one(kind, module, smoke):
    """One probe, in this (fresh) process; prints its outcome as JSON."""
    sys.path.insert(0, REPO)
    import subinterp

    interps = []
    outcome = None
    if kind == "main":
        outcome = probe_here(module, smoke)
    elif kind in ("isolated", "legacy"):
        interps.append(subinterp.create(config=kind))
        outcome = probe_here(module, smoke, interps[0])
    elif kind == "legacy2":
        for _ in range(2):
            interps.append(subinterp.create(config="legacy"))
            outcome = probe_here(module, smoke, interps[-1])
            if outcome is not None:
                if len(interps) == 1:
                    outcome = ["first", outcome]
                break
    elif kind == "main+legacy":
        outcome = probe_here(module, smoke)
        if outcome is not None:
            outcome = ["first", outcome]
        else:
            interps.append(subinterp.create(config="legacy"))
            outcome = probe_here(module, smoke, interps[0])
    else:
        raise SystemExit(f"unknown probe {kind!r}")
    print("RESULT " + json.dumps(outcome), flush=True)
    # Closing the interpreters (and the process's exit) is part of the
    # probe: a module that crashes there is recorded as such.
    for interp in interps:
        interp.close()


def spawn_probe(kind, module, smoke, timeout, stdlib=False):
    """The outcome and process status of one probe in a fresh process.
    A probe that crashes or hangs is repeated with the standard library's
    interpreters ("stdlib": its exit status)."""
    argv = [sys.executable, os.path.abspath(__file__), "one", kind, module]
    if smoke:
        argv.append(smoke)
    if stdlib:
        argv.append("--stdlib")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout, cwd="/")
    except subprocess.TimeoutExpired:
        res = {"status": "hang", "timeout": timeout}
        if kind != "main" and not stdlib:
            again = spawn_probe(kind, module, smoke, timeout, stdlib=True)
            res["stdlib"] = again.get("returncode", "hang")
        return res
    outcome = None
    found = False
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            outcome = json.loads(line[7:])
            found = True
    res = {"returncode": proc.returncode}
    if found:
        res["status"] = "done"
        res["outcome"] = outcome
    else:
        res["status"] = "died"
    if proc.returncode != 0:
        res["stderr"] = proc.stderr[-3000:]
        if kind != "main" and not stdlib:
            again = spawn_probe(kind, module, smoke, timeout, stdlib=True)
            res["stdlib"] = again.get("returncode", "hang")
    return res


def stdlib_extension_modules():
    """Names of sys.stdlib_module_names that are extension or builtin
    modules of this Python, sorted."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    names = []
    for name in sorted(sys.stdlib_module_names):
        if name in sys.builtin_module_names:
            if name not in ("sys", "builtins"):
                names.append(name)
            continue
        try:
            spec = importlib.util.find_spec(name)
        except Exception:
            continue
        if spec is not None and (spec.origin or "").endswith(suffixes):
            names.append(name)
    return names


def cmd_install(args):
    """pip-install every package of PACKAGES, one at a time: a wheel if
    there is one, else a build from source (bounded by --build-timeout)."""
    results = {}
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
           "--no-input", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=False)
    for req, _ in PACKAGES:
        t0 = time.monotonic()
        print(f"==> pip install {req}", flush=True)
        proc = subprocess.run(pip + ["--only-binary=:all:", req],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            how = "wheel"
        else:
            print(f"    no wheel for {req}; building from source", flush=True)
            try:
                proc = subprocess.run(pip + [f"--no-binary={req}", req],
                                      capture_output=True, text=True,
                                      timeout=args.build_timeout)
                how = "built from source" if proc.returncode == 0 else "build failed"
            except subprocess.TimeoutExpired:
                how = f"build timed out ({args.build_timeout} s)"
        version = None
        if how in ("wheel", "built from source"):
            show = subprocess.run([sys.executable, "-m", "pip", "show", req],
                                  capture_output=True, text=True)
            m = re.search(r"^Version: (\S+)", show.stdout, re.M)
            version = m.group(1) if m else None
        else:
            print((proc.stderr or "")[-1500:], flush=True)
        results[req] = {"how": how, "version": version,
                        "seconds": round(time.monotonic() - t0, 1)}
        print(f"    {how} {version or ''}", flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


def cmd_probe(args):
    with open(args.install) as f:
        installed = json.load(f)
    jobs = []  # (group, package, module, smoke)
    for req, modules in PACKAGES:
        for module, smoke in modules:
            jobs.append(("third-party", req, module, smoke))
    for name in stdlib_extension_modules():
        jobs.append(("stdlib", None, name, STDLIB_SMOKE.get(name)))
    rows = {}

    def run(job):
        group, req, module, smoke = job
        row = {"group": group, "package": req, "module": module,
               "smoke": bool(smoke), "probes": {}}
        if req is not None and installed.get(req, {}).get("version") is None:
            row["not_installed"] = installed.get(req, {}).get("how", "not installed")
            return module, row
        if group == "stdlib":
            row["builtin"] = module in sys.builtin_module_names
        for kind in KINDS:
            row["probes"][kind] = spawn_probe(kind, module, smoke, args.timeout)
            if kind == "main" and row["probes"][kind].get("outcome") is not None:
                # not importable here at all (e.g. no Tk): nothing else to learn
                break
        print(f"    {module}: " + ", ".join(
            f"{k}={summarize(p)}" for k, p in row["probes"].items()),
            flush=True)
        return module, row

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        for module, row in ex.map(run, jobs):
            rows[module] = row
    result = {
        "python": platform.python_version(),
        "version": "%d.%d" % sys.version_info[:2],
        "build": platform.python_build()[0],
        "platform": sysconfig.get_platform(),
        "date": datetime.date.today().isoformat(),
        "installed": installed,
        "rows": rows,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


# ----------------------------------------------------------------- report --

def reason(chain):
    """A short reason for a failed import, from its exception chain."""
    texts = [t for _, t in chain]
    for t in texts:
        if "does not support loading in subinterpreters" in t:
            return "refused"
        if "PyO3 modules" in t:
            return "PyO3: once per process"
        if ("more than once per process" in t
                or "one interpreter per process" in t
                or "can only be loaded once per process" in t):
            return "once per process"
        if "failed to import from subinterpreter due to exception" in t:
            return "main interpreter first: failed"
    name, text = chain[-1] if chain else ("?", "")
    text = text.splitlines()[0] if text else ""
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{name}: {text}".replace("|", "\\|")


def signal_text(rc):
    if rc == "hang":
        return "hang"
    if isinstance(rc, int) and rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return f"exit status {rc}"


def summarize(probe):
    """A short mark for one probe."""
    status = probe.get("status")
    rc = probe.get("returncode", 0)
    crash = None
    if status == "hang":
        crash = f"hang (no answer in {probe['timeout']} s)"
    elif rc != 0:
        crash = signal_text(rc)
    if crash and "stdlib" in probe:
        if probe["stdlib"] == 0:
            crash += "; not with the stdlib's interpreters"
        else:
            crash += "; the stdlib's interpreters too"
    if status in ("died", "hang"):
        return f"crash ({crash})"
    outcome = probe.get("outcome")
    if outcome is None:
        mark = "ok"
    elif outcome[0] == "first":
        mark = "(first failed)"
    elif outcome[0] == "smoke":
        mark = "imports; smoke test fails: " + reason(outcome[1])
    else:
        mark = reason(outcome[1])
    if crash:
        mark += f"; then crash at close/exit ({crash})"
    return mark


def fmt_mark(mark):
    if mark == "not probed":
        return "–"
    if mark == "ok":
        return "✓"
    if mark.startswith("ok; then "):
        return "✓, then ✗ " + mark[len("ok; then "):]
    return "✗ " + mark if not mark.startswith("(") else mark


def merged(per_version, fmt=str):
    """One table cell for [(version, value)]: the value alone when every
    version has it, else one line per version.  Versions without the
    module ("absent") are left out."""
    per_version = [(ver, v) for ver, v in per_version if v != "absent"]
    if len({v for _, v in per_version}) == 1:
        return fmt(per_version[0][1])
    return "<br>".join(f"{ver}: {fmt(v)}" for ver, v in per_version)


def probe_mark(r, module, kind):
    row = r["rows"].get(module)
    if row is None:
        return "absent"
    if "not_installed" in row:
        return "not installed: " + row["not_installed"]
    p = row["probes"].get(kind)
    return summarize(p) if p else "not probed"


def cmd_report(args):
    results = []
    for path in args.results:
        with open(path) as f:
            results.append(json.load(f))
    results.sort(key=lambda r: tuple(map(int, r["version"].split("."))))
    vers = [r["version"] for r in results]
    out = []
    w = out.append
    pythons = ", ".join(r["python"] for r in results)
    dates = ", ".join(sorted({r["date"] for r in results}))

    third = [(req, module) for req, modules in PACKAGES for module, _ in modules]

    def everywhere(module, kind, want="ok"):
        return all(probe_mark(r, module, kind) == want for r in results)

    iso_ok = [m for _, m in third if everywhere(m, "isolated")]
    legacy_ok = [m for _, m in third if everywhere(m, "legacy")]
    repeat_ok = [m for _, m in third
                 if everywhere(m, "legacy2") and everywhere(m, "main+legacy")]

    w("# Extension modules in subinterp's interpreters")
    w("")
    w("Which compiled modules load in an interpreter made by")
    w("`subinterp.create()` / `subinterp.Pool()`: with the default")
    w('`config="isolated"` (its own GIL, so Python code runs in parallel) and')
    w('with `config="legacy"` (the main GIL, shared).')
    w("")
    w(f"**Generated** by `scripts/probe-extensions.sh` on {dates}, with CPython")
    w(f"{pythons} ({results[0]['platform']}).  To regenerate it:")
    w("")
    w("```sh")
    w("scripts/probe-extensions.sh            # 3.12, 3.13, 3.14, 3.15, then this file")
    w("scripts/probe-extensions.sh 3.14       # one version; the others' last results")
    w("                                       # (build/probe/) are kept")
    w("```")
    w("")
    w("Per version it builds subinterp, makes a throwaway venv, installs the")
    w("packages below from PyPI (the newest release with a wheel for that")
    w("version, else it builds one from source) and probes each module in")
    w("fresh processes.  It needs the network and takes several minutes per")
    w("version, so it is not part of the test suite or of CI: this file is a")
    w("snapshot of the releases named below.  The message subinterp gives when")
    w("such an import fails is tested by `tests/test_extensions.py`.")
    w("")
    w("## In short")
    w("")
    n = len(third)

    def pkgs(modules):
        names = []
        for req, m in third:
            if m in modules and req not in names:
                names.append(req)
        return ", ".join(names) or "none"

    refused = [m for _, m in third if everywhere(m, "isolated", "refused")]
    legacy_bad = [m for _, m in third
                  if any(probe_mark(r, m, "legacy") not in ("ok", "absent")
                         and not probe_mark(r, m, "legacy").startswith("ok;")
                         and not probe_mark(r, m, "legacy").startswith("not ")
                         for r in results)]

    def fails_again(m):
        return any(not probe_mark(r, m, kind).startswith("ok")
                   for r in results for kind in ("legacy2", "main+legacy"))

    once = [m for _, m in third if m in legacy_ok and fails_again(m)]
    bullets = [
        f"Of the {n} compiled modules of popular packages probed, "
        f"{len(iso_ok)} load in an isolated interpreter on every version: "
        + (", ".join(f"`{m}`" for m in iso_ok) or "none") + ".  CPython "
        f"refuses {len(refused)} on every version, those of {pkgs(refused)}. "
        " Pure-Python packages and most of the standard library load.",
        f"In a legacy interpreter {len(legacy_ok)} of them load on every "
        "version, but legacy interpreters share the main GIL: no parallel "
        "Python code.  Those of " + pkgs(legacy_bad) + " fail there too on "
        "some version (CPython 3.13+ loads their single-phase modules in "
        "the main interpreter first, see below).",
        f"Of the {len(legacy_ok)}, {len(once)} fail in a second legacy "
        "interpreter, or in one after the main interpreter imported them: "
        f"those of {pkgs(once)}.  So a `Pool(config=\"legacy\")` with more "
        "than one worker, or a main interpreter that uses them too, fails.",
        "Keep such modules in the main interpreter and send plain data to "
        "the workers, or use processes for that work.",
    ]
    crashes = {}  # version -> [(module, kind, also with the stdlib's)]
    for r in results:
        for module, row in r["rows"].items():
            for kind, p in row.get("probes", {}).items():
                if p.get("returncode", 0) != 0 or p.get("status") == "hang":
                    crashes.setdefault(r["version"], []).append(
                        (module, kind, p.get("stdlib", 0) != 0))
    if crashes:
        where = "; ".join(f"{len(c)} on {v}" for v, c in sorted(crashes.items()))
        ours = [c for cs in crashes.values() for c in cs if not c[2]]
        bullets.append(
            f"Crashes (at an interpreter's close or at exit): {where}; "
            + ("every one of them happens with the standard library's own "
               "interpreters too (a bug of CPython or of the module)."
               if not ours else
               f"{len(ours)} of them not with the standard library's own "
               "interpreters: " + ", ".join(f"{m} ({k})" for m, k, _ in ours)
               + "."))
    for b in bullets:
        w(textwrap.fill(b, 76, initial_indent="- ", subsequent_indent="  "))
    w("")
    w("## Why modules refuse, and what to do")
    w("")
    w("An interpreter with its own GIL loads only extension modules that")
    w("declare they support it: multi-phase init (PEP 489) with")
    w("`Py_mod_multiple_interpreters` = `Py_MOD_PER_INTERPRETER_GIL_SUPPORTED`")
    w("(PEP 684).  CPython refuses the others, single-phase modules and")
    w("multi-phase ones without that declaration: `ImportError: module X does")
    w("not support loading in subinterpreters`.  Legacy interpreters")
    w("(`check_multi_interp_extensions` off) load them, but many modules check")
    w("by themselves that no other interpreter loaded them: numpy (`cannot")
    w("load module more than once per process`), PyO3 (`PyO3 modules do not")
    w("yet support subinterpreters`), Cython (`Interpreter change detected`),")
    w("`curses` (3.14+).  Since 3.13 CPython loads a single-phase module")
    w("imported by a legacy interpreter in the main interpreter first, so the")
    w("first legacy interpreter fails too when that load meets such a check:")
    w("scipy's and pandas' modules import numpy, which the legacy interpreter")
    w("already holds; a PyO3 module (bcrypt) is then held by the main")
    w("interpreter.  3.13 passes the cause on; 3.14+ raises only `failed to")
    w("import from subinterpreter due to exception` and prints the cause to")
    w("stderr.")
    w("")
    w("When `exec`, `call`, `call_in_thread`, a `Pool` task or a `Pool`")
    w("initializer ends with such an `ImportError`, subinterp raises one whose")
    w("message names the module, says which case it is and lists the options")
    w("(it stays an `ImportError`; the original is its `__cause__`; see")
    w("[api.md](api.md)).  The options:")
    w("")
    w('- `config="legacy"` (`subinterp.create(config="legacy")`,')
    w('  `subinterp.Pool(config="legacy")`) loads single-phase modules.  Its')
    w("  interpreters share the main GIL: their Python code does not run in")
    w("  parallel with other Python code (C code that releases the GIL still")
    w("  does), and modules that load once per process still fail in every")
    w("  interpreter after the first (the legacy2 and main+legacy columns).")
    w("- Import the module in the main interpreter only, and send plain data")
    w("  (bytes, buffers, lists, dicts, ...) to the workers.")
    w("- Processes (`concurrent.futures.ProcessPoolExecutor`,")
    w("  `multiprocessing`): each has its own copy of every module.")
    w("- Ask the module's maintainers for multi-phase init with per-interpreter")
    w("  GIL support (the C API's \"Isolating Extension Modules\" HOWTO).")
    w("")
    w("A refused import is not always harmless: CPython runs a single-phase")
    w("module's init function before it refuses the module, and a module that")
    w("keeps objects in C globals there leaves objects of that interpreter")
    w("behind.  The standard library's `_testsinglephase`, for one, crashed")
    w("3.12.1 in its init function when a second isolated interpreter tried")
    w("to import it: it freed the object the first refused import had left.")
    w("")
    w("## Columns")
    w("")
    w("| column | the import was made |")
    w("| --- | --- |")
    w("| main | in the main interpreter (a module that fails there is not probed further) |")
    w("| isolated | in `subinterp.create()`, nothing imported in main |")
    w('| legacy | in `subinterp.create(config="legacy")`, nothing imported in main |')
    w("| legacy2 | in a second legacy interpreter, after a first one imported it |")
    w("| main+legacy | in a legacy interpreter after the main interpreter imported it |")
    w("")
    w("- ✓: the import and a smoke test (a few lines of ordinary use) passed.")
    w("- ✗ refused: CPython's `does not support loading in subinterpreters`.")
    w("- ✗ once per process / PyO3: once per process: the module's own check")
    w("  (above).")
    w("- ✗ main interpreter first: failed: 3.14+'s `failed to import from")
    w("  subinterpreter due to exception` (above).")
    w("- (first failed): the first interpreter already failed.")
    w("- crash: the process died on a signal; \"✓, then ✗ crash at")
    w("  close/exit\": the import worked, closing the interpreter or the")
    w("  process's exit crashed.  Each crash was repeated with the standard")
    w("  library's own interpreters (`_interpreters`, `_xxsubinterpreters` on")
    w("  3.12) doing the same steps: \"the stdlib's interpreters too\" means a")
    w("  bug of CPython or of the module, not of subinterp.")
    w("- A cell without versions holds for every version; otherwise it lists")
    w("  each.")
    w("")
    w("## Popular packages")
    w("")
    w("| package | version | module | " + " | ".join(KINDS) + " |")
    w("| --- | --- | --- | " + " | ".join("---" for _ in KINDS) + " |")
    for req, module in third:
        inst = []
        for r in results:
            i = r["installed"].get(req, {})
            how = i.get("how", "not tried")
            v = i.get("version")
            if how == "wheel":
                inst.append((r["version"], v))
            elif how == "built from source":
                inst.append((r["version"], f"{v} (no wheel: built from source)"))
            else:
                inst.append((r["version"], f"not installed ({how})"))
        cells = [merged([(r["version"], probe_mark(r, module, kind))
                         for r in results], fmt_mark) for kind in KINDS]
        w(f"| {req} | {merged(inst)} | `{module}` | " + " | ".join(cells) + " |")
    w("")
    w("## Standard library")
    w("")
    w("Every module of `sys.stdlib_module_names` that is a builtin module or a")
    w("shared library in these builds; a smoke test ran for " +
      ", ".join(f"`{m}`" for m in sorted(STDLIB_SMOKE)) + ".")
    w("Modules with ✓ in every column are listed after the table.  A version")
    w("named after a module: the module exists only there.")
    names = sorted({m for r in results for m, row in r["rows"].items()
                    if row["group"] == "stdlib"})
    w("")
    w("| module | " + " | ".join(KINDS) + " |")
    w("| --- | " + " | ".join("---" for _ in KINDS) + " |")
    all_ok = []
    for name in names:
        per_kind = [[(r["version"], probe_mark(r, name, kind)) for r in results]
                    for kind in KINDS]
        present = [r["version"] for r in results if name in r["rows"]]
        label = f"`{name}`"
        if len(present) < len(results):
            label += " (" + ", ".join(present) + ")"
        if all(m in ("ok", "absent") for marks in per_kind for _, m in marks):
            all_ok.append(label)
            continue
        w(f"| {label} | " + " | ".join(merged(marks, fmt_mark)
                                       for marks in per_kind) + " |")
    w("")
    w(f"✓ in every column on {', '.join(vers)} (or on the versions named): "
      + ", ".join(all_ok) + ".")
    w("")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("install")
    p.add_argument("out")
    p.add_argument("--build-timeout", type=int, default=900)
    p = sub.add_parser("probe")
    p.add_argument("install")
    p.add_argument("out")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=int, default=120)
    p = sub.add_parser("report")
    p.add_argument("results", nargs="+")
    p = sub.add_parser("one")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("module")
    p.add_argument("smoke", nargs="?")
    p.add_argument("--stdlib", action="store_true",
                   help="with the standard library's interpreters")
    args = ap.parse_args()
    if args.cmd == "install":
        cmd_install(args)
    elif args.cmd == "probe":
        cmd_probe(args)
    elif args.cmd == "report":
        cmd_report(args)
    elif args.stdlib:
        run_one_stdlib(args.kind, args.module, args.smoke)
    else:
        run_one(args.kind, args.module, args.smoke)


if __name__ == "__main__":
    main()
