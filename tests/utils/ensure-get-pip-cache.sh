#!/usr/bin/env bash
# Create an offline stand-in for the get-pip.py bootstrap script that
# `ansible-test ... --requirements` would otherwise download from
# https://ci-files.testing.ansible.com/ansible-test/get-pip-<ver>.py
#
# ansible-test (ansible_test/_util/target/setup/requirements.py, bootstrap())
# first looks for ~/.ansible/test/cache/get_pip_<ver with dots -> _>.py and runs it
# as the module `get_pip_<ver>` with:
#   --disable-pip-version-check pip==<ver> [--no-setuptools] [--no-wheel]
# The stand-in runs `python -m ensurepip`, then `python -m pip install <args>`
# without --no-setuptools/--no-wheel (pip install does not know them).
#
# An existing file is never overwritten (it may be a real get-pip.py).
#
# Usage: ensure-get-pip-cache.sh [PYTHON]
#   PYTHON: interpreter with ansible-core installed (default: $ANSIBLE_TEST_PYTHON,
#           else the interpreter of `ansible-test` on PATH, else python3).
set -euo pipefail

py="${1:-${ANSIBLE_TEST_PYTHON:-}}"
if [[ -z "$py" ]]; then
    if at="$(command -v ansible-test 2>/dev/null)"; then
        shebang="$(head -n1 "$at")"
        case "$shebang" in
            '#!'*) py="${shebang#'#!'}"; py="${py%% *}" ;;
        esac
        [[ -x "$py" ]] || py=""
    fi
fi
py="${py:-python3}"

# Ask the installed ansible_test which pip version(s) it bootstraps, for every Python
# version it supports (get_venv_packages() allows per-version overrides).
if ! versions="$("$py" - <<'EOF'
import types
from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS
from ansible_test._internal.python_requirements import get_venv_packages
print('\n'.join(sorted({get_venv_packages(types.SimpleNamespace(version=v))['pip']
                        for v in SUPPORTED_PYTHON_VERSIONS})))
EOF
)" || [[ -z "$versions" ]]; then
    echo "ensure-get-pip-cache: cannot ask ansible_test (via $py) which pip version it wants" >&2
    exit 1
fi

cache_dir="${HOME}/.ansible/test/cache"
mkdir -p "$cache_dir"

for ver in $versions; do
    target="${cache_dir}/get_pip_${ver//./_}.py"
    if [[ -e "$target" ]]; then
        echo "ensure-get-pip-cache: keeping existing $target"
        continue
    fi
    tmp="$(mktemp "${target}.XXXXXX")"
    cat >"$tmp" <<'EOF'
"""Offline stand-in for get-pip.py used by ansible-test (see ensure-get-pip-cache.sh).

Installs the pip bundled with Python (ensurepip), then runs
`python -m pip install <arguments>` with --no-setuptools/--no-wheel dropped.
On Python < 3.12 ensurepip also installs setuptools; like the real get-pip.py,
it is removed again when --no-setuptools was asked for (unless it was there before).
"""
import glob
import os
import subprocess
import sys
import sysconfig

DROP = ('--no-setuptools', '--no-wheel')


def has_setuptools():
    purelib = sysconfig.get_paths()['purelib']
    return bool(glob.glob(os.path.join(purelib, 'setuptools-*.dist-info')))


def main():
    args = [a for a in sys.argv[1:] if a not in DROP]
    had_setuptools = has_setuptools()
    subprocess.check_call([sys.executable, '-m', 'ensurepip'])
    if args:
        subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
    if '--no-setuptools' in sys.argv[1:] and not had_setuptools and has_setuptools():
        subprocess.check_call([sys.executable, '-m', 'pip', 'uninstall', '-q', '-y',
                               '--disable-pip-version-check', 'setuptools'])


if __name__ == '__main__':
    try:
        main()
    except subprocess.CalledProcessError as ex:
        sys.exit(ex.returncode or 1)
EOF
    chmod 0644 "$tmp"
    # no-clobber: never replace a file that appeared meanwhile
    if ln "$tmp" "$target" 2>/dev/null; then
        echo "ensure-get-pip-cache: created $target"
    else
        echo "ensure-get-pip-cache: keeping existing $target"
    fi
    rm -f "$tmp"
done
