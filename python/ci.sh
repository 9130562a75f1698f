#!/usr/bin/env bash
# The Python package as Python users install it: build the abi3 wheel with maturin, install it
# into a fresh venv with no Rust toolchain on the PATH, and run the test suite against it (with
# mypy installed, so tests/test_types.py checks the README's examples against the wheel's stubs).
#
#   bash python/ci.sh            (from the repository root or anywhere)
#
# Needs python3 (with venv) and, for the build step only, cargo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="$root/target/python-wheel-ci"
rm -rf "$work"
mkdir -p "$work"

echo "== build the wheel (maturin, abi3)"
python3 -m venv "$work/build-venv"
"$work/build-venv/bin/pip" install -q "maturin>=1.5,<2"
(cd "$here" && "$work/build-venv/bin/maturin" build --release --locked --out "$work/wheels")
wheel="$(ls "$work"/wheels/schedlab-*-abi3-*.whl)"
echo "built $wheel"

echo "== install it into a fresh venv, without Rust on the PATH"
python3 -m venv "$work/venv"
clean_path="$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -e '\.cargo/bin' -e '/rustup' | paste -sd: -)"
env PATH="$clean_path" bash -c '
    set -euo pipefail
    if command -v cargo >/dev/null || command -v rustc >/dev/null; then
        echo "a Rust toolchain is still on the PATH" >&2
        exit 1
    fi
    "$0/venv/bin/pip" install -q "$1" pytest Pillow mypy   # mypy: tests/test_types.py
    cd "$0"   # not the source tree: the installed package is what is imported
    "$0/venv/bin/python" -c "import schedlab, os; print(\"schedlab from\", os.path.dirname(schedlab.__file__))"
    "$0/venv/bin/python" -m pytest -q -p no:cacheprovider "$2/tests"
' "$work" "$wheel" "$here"
