# -*- coding: utf-8 -*-
"""Every module fed argument dicts made from its own argument_spec: each option of the right
type with odd values (empty, huge, unicode, negative, NUL, '%x', nested where a list or a dict
is allowed), run in-process as Ansible runs it (main() reading its arguments from
ansible.module_utils.basic, the result read from what it prints).

Properties: the run ends in exit_json or fail_json, a failure never says "unexpected error" or
carries a trace, nothing of the sandbox outside the ops home changes, and a run in check mode
changes nothing in the ops home either (not even a scratch folder). Host paths are drawn from
inside the sandbox only, the provider stays onprem and URLs point at the sandbox or a closed
local port, so a run can reach nothing else. ops_instance runs in check mode only: its options
are all validated, but no QEMU is started.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import importlib
import io
import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible.module_utils import basic

from ansible_collections.unikernel.ops.plugins.module_utils import module_base
from ansible_collections.unikernel.ops.tests.integration.targets.ops_kernel.files import release_store
from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import run_module, tree

MODULES = ("ops_volume", "ops_volume_info", "ops_image", "ops_image_info", "ops_kernel",
           "ops_kernel_info", "ops_instance", "ops_instance_info", "ops_mount")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))  # more for a longer hunt
# Options whose value is a path on this host: drawn from the sandbox only.
HOST_PATHS = ("source", "program", "kernel", "boot", "klib_dir", "src", "service_account_file")
HOST_PATH_LISTS = ("files", "dirs")
# Never fuzzed: the ops home is the test's own; the provider stays onprem (a cloud would be
# asked over the network).
FIXED = ("ops_dir", "provider")
ONLY_CHECK_MODE = ("ops_instance",)
# No instance runs in the fuzz: ops_mount can only fail (with a message).
NEVER_SUCCEEDS = ("ops_mount",)


class _Spec(Exception):
    def __init__(self, spec):
        super(_Spec, self).__init__("spec")
        self.spec = spec


def _record_spec(self, argument_spec=None, *args, **kwargs):
    """Stands in for AnsibleModule.__init__ while the argument_spec is read, never while a
    module runs."""
    raise _Spec(argument_spec)


def argument_spec(module):
    mod = importlib.import_module("ansible_collections.unikernel.ops.plugins.modules." + module)
    saved = basic.AnsibleModule.__init__
    basic.AnsibleModule.__init__ = _record_spec
    basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = b'{"ANSIBLE_MODULE_ARGS": {}}', "legacy"
    try:
        mod.main()
    except _Spec as e:
        return mod, e.spec
    finally:
        basic.AnsibleModule.__init__ = saved
        basic._ANSIBLE_ARGS = None
    raise AssertionError("%s built no AnsibleModule" % module)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, c_programs):
    """The folder every drawn path points into: an ops home with a kernel, a volume and an
    image; sources, files and a release store beside it."""
    base = str(tmp_path_factory.mktemp("fuzz"))
    ops = kernel_home(os.path.join(base, "ops"))
    src = os.path.join(base, "src")
    os.makedirs(os.path.join(src, "sub"))
    with open(os.path.join(src, "index.html"), "w") as f:
        f.write("<h1>site</h1>\n")
    with open(os.path.join(src, "sub", u"n\u00f6te.txt"), "w") as f:
        f.write("note\n")
    files = os.path.join(base, "files")
    os.makedirs(files)
    shutil.copy(c_programs["static"], os.path.join(files, "hello-static"))
    with open(os.path.join(files, "config.json"), "w") as f:
        json.dump({"Env": {"A": "1"}, "Args": ["-v"]}, f)
    with open(os.path.join(files, "not-a-kernel.img"), "wb") as f:
        f.write(b"\x7fELF but not really a kernel\n" * 10)
    store = os.path.join(base, "store")
    made = release_store.make_store(store, "0.1.97", nightly_stamp=None)
    shutil.copy(made["0.1.97"]["path"], os.path.join(files, "release.tar.gz"))
    shutil.rmtree(os.path.join(store, ".build"))
    for d in ("cwd", "home", "atmp"):
        os.makedirs(os.path.join(base, d))
    for module, args in (("ops_volume", {"name": "site", "source": src, "size": "4m"}),
                         ("ops_image", {"name": "web", "program": os.path.join(files, "hello-static"),
                                        "mounts": {"site": "/site"}})):
        result, rc = run_module(module, dict(args, ops_dir=ops), base)
        assert rc == 0 and result["changed"], result
    return {"base": base, "ops": ops, "src": src, "files": files, "store": store}


def outside_ops(sandbox):
    """The sandbox but the ops home and the folders a module run may use as scratch."""
    snap = tree(sandbox["base"])
    return dict((k, v) for k, v in snap.items()
                if not k.split(os.sep)[0] in ("ops", "atmp") and not k.startswith("args-"))


# -- strategies ---------------------------------------------------------------------------

ODD_TEXT = st.one_of(
    st.sampled_from(["", " ", "x" * 300, u"\u00e9\u4e2d\U0001f642", "%x", "%s%n%d", "-1", "0",
                     "null", "{{ x }}", "\n", "a:b", "a/b", "/", ".", "..", "-", "\x00", "a\x00b",
                     "latest", "nightly", "0.1.99", "site", "web", "images", "%1", "9" * 40]),
    st.text(max_size=12))
SCALARS = st.one_of(ODD_TEXT, st.integers(-2 ** 70, 2 ** 70), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False))
NESTED = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)
INTS = st.one_of(st.integers(-3, 300), st.integers(-2 ** 70, 2 ** 70),
                 st.sampled_from(["x", "1.5", "", "0x10", " 7 "]))
BOOLS = st.one_of(st.booleans(), st.sampled_from(["yes", "no", "maybe", 2, "", "on"]))


def host_paths(sandbox):
    b, f = sandbox["base"], sandbox["files"]
    return st.sampled_from([
        sandbox["src"], os.path.join(sandbox["src"], "sub"), os.path.join(sandbox["src"], "index.html"),
        f, os.path.join(f, "hello-static"), os.path.join(f, "config.json"),
        os.path.join(f, "not-a-kernel.img"), os.path.join(f, "release.tar.gz"),
        os.path.join(b, "missing"), os.path.join(b, u"\u00e9\u4e2d"), os.path.join(b, "src\x00x"),
        os.path.join(sandbox["ops"], "0.1.99", "kernel.img"),
        os.path.join(sandbox["ops"], "0.1.99", "boot.img"), os.path.join(sandbox["ops"], "0.1.99", "klibs"),
        sandbox["ops"], b, "", "rel", "rel/x", "~/nothing", "$HOME/x", "%x"])


def urls(sandbox):
    store = sandbox["store"]
    return st.sampled_from(["file://" + store + "/", "file://" + store, "file://" + store + "/missing/",
                            "file://" + os.path.join(sandbox["files"], "release.tar.gz"),
                            "http://127.0.0.1:9/", "ftp://example.invalid/", "", "%x", "file://",
                            "http://[::1"])


def option_values(name, spec, sandbox):
    """A strategy for one option, from its spec entry."""
    kind = spec.get("type", "str")
    paths = host_paths(sandbox)
    if name in HOST_PATHS:
        if name == "src":
            return st.one_of(paths, urls(sandbox))
        return paths
    if name == "release_url":
        return urls(sandbox)
    if name in HOST_PATH_LISTS:
        item = st.one_of(paths, st.fixed_dictionaries({"src": paths}, optional={"dest": ODD_TEXT}),
                         st.dictionaries(ODD_TEXT, ODD_TEXT, max_size=2))
        return st.one_of(st.lists(item, max_size=3), ODD_TEXT)
    if name == "config":
        return st.one_of(paths, st.dictionaries(st.sampled_from(["Env", "Args", "Mounts", "Program", "Bogus"]),
                                                NESTED, max_size=3), SCALARS)
    if name == "shares":
        return st.one_of(st.dictionaries(ODD_TEXT, paths, max_size=2), SCALARS)
    if spec.get("choices"):
        return st.one_of(st.sampled_from(spec["choices"]), ODD_TEXT)
    if kind in ("str", "path"):
        return st.one_of(ODD_TEXT, st.integers(-5, 5), st.sampled_from([["list"], {"d": 1}]))
    if kind == "int":
        return INTS
    if kind == "bool":
        return BOOLS
    if kind == "list":
        return st.one_of(st.lists(NESTED if spec.get("elements") == "raw" else ODD_TEXT, max_size=4),
                         ODD_TEXT, st.integers(-5, 5))
    if kind == "dict":
        return st.one_of(st.dictionaries(ODD_TEXT, NESTED, max_size=3),
                         st.sampled_from(["k=v", "", "{", "a=1 b=2"]), st.lists(SCALARS, max_size=2))
    return NESTED  # raw


def sane_values(sandbox):
    """Values a run can go through with, per option name; an option not here is left out of
    the sane part of an example."""
    rel = os.path.join(sandbox["ops"], "0.1.99")
    program = os.path.join(sandbox["files"], "hello-static")
    return {
        "name": st.sampled_from(["site", "web", "fuzz", "fuzz2"]),
        "state": None,  # from its choices
        "size": st.sampled_from(["4m", "8m", "16m"]),
        "source": st.just(sandbox["src"]),
        "tfs_version": st.sampled_from([4, 5]),
        "program": st.just(program),
        "args": st.lists(st.sampled_from(["-v", "x y", u"\u00e9"]), max_size=2),
        "env": st.dictionaries(st.sampled_from(["A", "MODE"]), st.sampled_from(["1", "prod"]), max_size=2),
        "mounts": st.sampled_from([{}, {"site": "/site"}, {"site": "/data:ro"}]),
        "kernel": st.just(os.path.join(rel, "kernel.img")),
        "boot": st.just(os.path.join(rel, "boot.img")),
        "nanos_version": st.just("0.1.99"),
        "version": st.sampled_from(["0.1.97", "latest", "0.1.99"]),
        "src": st.just(os.path.join(sandbox["files"], "release.tar.gz")),
        "release_url": st.just("file://" + sandbox["store"] + "/"),
        "image": st.just("web"),
        "memory": st.sampled_from(["256M", "1G"]),
        "cpus": st.sampled_from([1, 2]),
        "ports": st.lists(st.sampled_from(["8080", "8081:80", "53/udp"]), max_size=2, unique=True),
        "volumes": st.sampled_from([[], ["site"]]),
        "instance": st.sampled_from(["web", "fuzz"]),
        "volume": st.just("site"),
        "contents": st.booleans(),
        "checksums": st.booleans(),
        "force": st.booleans(),
        "latest": st.booleans(),
    }


@st.composite
def module_args(draw, spec, sandbox):
    """A sane run (required options, and some others), then up to two options given an odd
    value: a bad input among good ones is where a check is missed. A cloud-only option rarely
    (any one fails the run at once on onprem, which would hide the rest)."""
    sane = sane_values(sandbox)
    args = {}
    cloud = [n for n in spec if n in module_base.CLOUD_ONLY]
    names = sorted(n for n in spec if n not in FIXED and n not in cloud)
    for name in names:
        if name in sane and (spec[name].get("required") or draw(st.booleans())):
            values = sane[name] if sane[name] is not None else st.sampled_from(spec[name]["choices"])
            args[name] = draw(values)
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        args[name] = draw(option_values(name, spec[name], sandbox))
    for name in names:  # still required, so given; sanely if it can be
        if spec[name].get("required") and name not in args:
            args[name] = draw(option_values(name, spec[name], sandbox))
    if cloud and draw(st.integers(0, 9)) == 0:
        name = draw(st.sampled_from(sorted(cloud)))
        args[name] = draw(option_values(name, spec[name], sandbox))
    return args


# -- running ------------------------------------------------------------------------------

def run_in_process(mod, args, sandbox, check_mode, diff):
    """(result, exit code) of mod.main() given args, as Ansible hands them to a module."""
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, ops_dir=sandbox["ops"], _ansible_check_mode=check_mode,
                                           _ansible_diff=diff,
                                           _ansible_tmpdir=os.path.join(sandbox["base"], "atmp"))}
    basic._ANSIBLE_ARGS = json.dumps(payload).encode("utf-8")
    basic._ANSIBLE_PROFILE = "legacy"
    out = io.StringIO()
    code = None
    try:
        with contextlib.redirect_stdout(out):
            mod.main()
    except SystemExit as e:
        code = e.code
    finally:
        basic._ANSIBLE_ARGS = None
    text = out.getvalue()
    assert code is not None, "main() returned without exit_json or fail_json: %s" % text
    return json.loads(text[text.index("{"):]), code


def check_run(mod, args, sandbox, check_mode, diff, before):
    home_before = tree(sandbox["ops"]) if check_mode else None
    result, code = run_in_process(mod, args, sandbox, check_mode, diff)
    msg = str(result.get("msg", ""))
    if result.get("failed"):
        assert code == 1, result
        assert "unexpected error" not in msg, (args, result)
        assert "Traceback" not in json.dumps(result) and "exception" not in result, (args, result)
    else:
        assert code == 0, result
    assert outside_ops(sandbox) == before, ("a run changed the sandbox outside the ops home", args)
    if check_mode:
        assert tree(sandbox["ops"]) == home_before, ("a check-mode run changed the ops home", args, result)
    return result


@pytest.mark.parametrize("module", MODULES)
def test_fuzz_module_inputs(module, sandbox, monkeypatch):
    mod, spec = argument_spec(module)
    monkeypatch.setenv("HOME", os.path.join(sandbox["base"], "home"))
    monkeypatch.chdir(os.path.join(sandbox["base"], "cwd"))
    before = outside_ops(sandbox)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.data_too_large])
    @given(args=module_args(spec, sandbox), check_mode=st.booleans(), diff=st.booleans())
    def fuzz(args, check_mode, diff):
        result = check_run(mod, args, sandbox, check_mode or module in ONLY_CHECK_MODE, diff, before)
        seen.append(result.get("msg", "") if result.get("failed") else None)

    seen = []
    fuzz()
    # Both ends were reached: runs that failed with a message, and runs that went through.
    assert any(m for m in seen), seen
    assert any(m is None for m in seen) != (module in NEVER_SUCCEEDS), seen
