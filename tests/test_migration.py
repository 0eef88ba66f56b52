"""The examples of docs/migration.md, run.

Each example of the guide is three blocks marked with HTML comments:
``<!-- example NAME before -->``, ``... after -->`` and ``... output -->``.
The *after* program must print the documented output on every version;
the *before* program too, wherever what it imports exists: that is the
comparison of before and after the guide promises.
"""

import difflib
import importlib.util
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
GUIDE = os.path.join(os.path.dirname(HERE), "docs", "migration.md")

BLOCK = re.compile(
    r"<!-- example (\w+) (before|after|output) -->\n"
    r"```\w*\n(.*?)```\n",
    re.S,
)


def examples():
    with open(GUIDE, encoding="utf-8") as f:
        text = f.read()
    found = {}
    for name, part, body in BLOCK.findall(text):
        assert (name, part) not in found, (name, part)
        found[name, part] = body
    return found


EXAMPLES = examples()
NAMES = sorted({name for name, _ in EXAMPLES})

# what the *before* program needs, and why it cannot run elsewhere
BEFORE_NEEDS = {
    "stdlib": ("concurrent.interpreters",
               "concurrent.interpreters is new in Python 3.14"),
    "processpool": ("concurrent.futures.process", ""),
    "backport": ("interpreters_backport",
                 "interpreters-pep-734 is installed for Python 3.13 only "
                 "(requirements-test.txt): on 3.12 it needs the "
                 "interpreters-3-12 extension, 3.14+ has the real module"),
}


def available(modname):
    try:
        return importlib.util.find_spec(modname) is not None
    except ModuleNotFoundError:
        return False


def run(tmp_path, name, part):
    path = tmp_path / f"{name}_{part}.py"
    path.write_text(EXAMPLES[name, part], encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), env.get("PYTHONPATH", "")]
    )
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True,
        timeout=300, env=env, cwd=tmp_path,
    )


def test_guide_has_the_examples():
    assert NAMES == ["backport", "processpool", "stdlib"]
    for name in NAMES:
        for part in ("before", "after", "output"):
            assert (name, part) in EXAMPLES, (name, part)
    with open(GUIDE, encoding="utf-8") as f:
        text = f.read()
    # the section another part of the documentation fills
    assert "\n## From multiprocessing.Pool\n" in text


@pytest.mark.parametrize("name", NAMES)
def test_after(tmp_path, name):
    res = run(tmp_path, name, "after")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert res.stdout == EXAMPLES[name, "output"]


@pytest.mark.parametrize("name", NAMES)
def test_before(tmp_path, name):
    needs, why = BEFORE_NEEDS[name]
    if not available(needs):
        pytest.skip(why)
    res = run(tmp_path, name, "before")
    assert res.returncode == 0, res.stderr
    assert res.stdout == EXAMPLES[name, "output"]


@pytest.mark.parametrize("name", ["stdlib", "processpool"])
def test_only_names_change(name):
    """Moving from the standard library changes the imports (and the
    executor's name), nothing else."""
    before = EXAMPLES[name, "before"].splitlines()
    after = EXAMPLES[name, "after"].splitlines()
    changed = [line[1:] for line in difflib.ndiff(before, after)
               if line[:1] in "+-"]
    assert changed
    for line in changed:
        assert (line.lstrip().startswith(("from ", "import "))
                or "PoolExecutor(" in line), line
