#!/usr/bin/env bash
# The Python SDK's checks, from a clean checkout: the venv with the pinned tools, the package
# (editable), the generated models against sdks/openapi.json, mypy --strict, then pytest
# against the real server (CHIMATIC_BIN, default: the repository's target/debug/chimatic).
set -euo pipefail
cd "$(dirname "$0")"
sdk=$PWD
repo=$(cd ../.. && pwd)
venv=${CHIMATIC_SDK_PYTHON_VENV:-$repo/target/sdk-python-venv}
python=${PYTHON:-python3}
export CHIMATIC_BIN=${CHIMATIC_BIN:-$repo/target/debug/chimatic}
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '== %s\n' "$*"; }

step "venv $venv"
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet -r requirements-dev.txt
# hatchling is pinned in the venv, so the editable build needs nothing from outside it.
"$venv/bin/pip" install --quiet --no-deps --no-build-isolation -e .

step "generated models are current (scripts/generate.py)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_generated.py

step "mypy --strict"
"$venv/bin/mypy" --strict --cache-dir "$repo/target/sdk-python-mypy-cache"

step "pytest (server: $CHIMATIC_BIN)"
"$venv/bin/python" -m pytest -p no:cacheprovider --ignore=tests/test_generated.py "$@"

# The package claims Python 3.9: where a 3.9 interpreter is installed, check that it runs there
# (the pinned dev tools need 3.10+, so this is a runtime check without them).
py39=""
for candidate in ${PYTHON39:-} python3.9 "$(pyenv root 2>/dev/null)"/versions/3.9*/bin/python3.9; do
  if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 9)' >/dev/null 2>&1; then
    py39=$candidate
    break
  fi
done
if [[ -n "$py39" ]]; then
  step "runtime check on $("$py39" --version)"
  venv39=$repo/target/sdk-python-venv39
  [[ -x "$venv39/bin/python" ]] || "$py39" -m venv "$venv39"
  "$venv39/bin/pip" install --quiet "$sdk"
  "$venv39/bin/python" scripts/check_runtime.py
else
  step "no Python 3.9 interpreter here: runtime check on 3.9 skipped"
fi
