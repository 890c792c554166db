#!/usr/bin/env bash
# CI step: the open_clip backend, tested for real in a second environment.
#
# open_clip imports torchvision, and no torchvision on PyPI imports beside the
# CPU torch 2.13.0 wheel of the default environment. torch 2.14.1 with
# torchvision 0.29.1 (a CUDA build, about 5.5 GB; it runs on the CPU) is a pair
# that does, so this step builds .venv-openclip with exactly that pair plus
# skhftt[openclip,test], and runs the tests marked `openclip` there. The
# default environment stays on torch 2.13.0.
#
# The environment is reused when it already holds the pair and was installed
# from the current pyproject.toml (a stamp file records both); otherwise it is
# (re)installed. If the pair or open_clip cannot be installed or imported, the
# step says so loudly and fails: it never skips. Exits with pytest's status;
# "no tests ran" (5) is a failure too.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

PAIR=(torch==2.14.1 torchvision==0.29.1)
VENV=.venv-openclip
PY="$VENV/bin/python"
STAMP="$VENV/.skhftt-openclip-stamp"
PYTHON=${PYTHON:-python3}

fail() {
    echo "" >&2
    echo "ERROR: $*" >&2
    echo "ERROR: the open_clip tests did NOT run; this CI step fails rather than skip." >&2
    exit 1
}

stamp() {
    { printf '%s\n' "${PAIR[@]}"; cat pyproject.toml; } | sha256sum | cut -d' ' -f1
}

# Prints the versions; fails, saying why, unless torch, torchvision and
# open_clip import together with torch and torchvision at the pinned pair.
check_env() {
    "$PY" - 2>&1 <<'PYTHON'
import torch, torchvision, open_clip
print("torch", torch.__version__, "| torchvision", torchvision.__version__,
      "| open_clip", open_clip.__version__)
assert torch.__version__.split("+")[0] == "2.14.1", f"torch is {torch.__version__}"
assert torchvision.__version__.split("+")[0] == "0.29.1", f"torchvision is {torchvision.__version__}"
PYTHON
}

start=$(date +%s)
if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp)" ] \
    && versions=$(check_env); then
    echo "+ reusing $VENV (installed from this pyproject.toml)"
else
    if [ ! -x "$PY" ]; then
        echo "+ $PYTHON -m venv $VENV"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV" || fail "could not create the virtual environment $VENV with $PYTHON."
    fi
    rm -f "$STAMP"
    echo "+ $PY -m pip install ${PAIR[*]}"
    "$PY" -m pip install -q "${PAIR[@]}" || fail "could not install ${PAIR[*]} into $VENV. \
These two wheels must come from the package index or local wheel store of this machine \
($(uname -m), $("$PY" -c 'import sys; print("Python %d.%d" % sys.version_info[:2])')); \
without them open_clip cannot be tested."
    constraints=$(mktemp)
    printf '%s\n' "${PAIR[@]}" >"$constraints"
    echo "+ $PY -m pip install -e \".[openclip,test]\" -c <${PAIR[*]}>"
    "$PY" -m pip install -q -e ".[openclip,test]" -c "$constraints" || {
        rm -f "$constraints"
        fail "could not install skhftt[openclip,test] into $VENV beside ${PAIR[*]} \
(open_clip_torch, or a test dependency, is missing or wants another torch)."
    }
    rm -f "$constraints"
    versions=$(check_env) || fail "torch, torchvision and open_clip do not import together \
as ${PAIR[*]} in $VENV:
$(printf '%s\n' "$versions" | tail -5)"
    stamp >"$STAMP"
fi
installed=$(date +%s)
echo "+ $versions"
echo "open_clip environment ready in $((installed - start)) s"

echo "+ SKHFTT_REQUIRE_OPENCLIP=1 $PY -m pytest -m openclip tests/test_openclip.py -v"
SKHFTT_REQUIRE_OPENCLIP=1 "$PY" -m pytest -m openclip tests/test_openclip.py -v
status=$?
tested=$(date +%s)
echo "open_clip tests ran in $((tested - installed)) s (step total $((tested - start)) s)"
if [ "$status" -eq 5 ]; then
    fail "pytest collected no open_clip tests (exit status 5)."
fi
if [ "$status" -ne 0 ]; then
    echo "ERROR: the open_clip tests failed (pytest exit status $status)." >&2
fi
exit "$status"
