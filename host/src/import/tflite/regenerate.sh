#!/bin/sh
# Regenerates schema_generated.rs (the flatbuffer reader) from schema.fbs with planus-cli
# 1.3.0, the version of the `planus` crate in host/Cargo.toml (the generated code checks it).
# `--check` only compares the committed file with a fresh generation.
#
#   cargo install planus-cli --version 1.3.0 --locked
#   host/src/import/tflite/regenerate.sh [--check]
set -eu
cd "$(dirname "$0")"
PLANUS=${PLANUS:-planus}
if ! command -v "$PLANUS" >/dev/null; then
    echo "needs planus-cli 1.3.0 (or set PLANUS to its path): cargo install planus-cli --version 1.3.0 --locked" >&2
    exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$PLANUS" rust -o "$out" schema.fbs
# planus has no --version; the generated code names the version it was made by.
if ! grep -q '"planus-1.3.0"' "$out"; then
    echo "$PLANUS is not planus-cli 1.3.0 (the planus crate's version): cargo install planus-cli --version 1.3.0 --locked" >&2
    exit 1
fi
if [ "${1:-}" = --check ]; then
    if cmp -s "$out" schema_generated.rs; then
        echo "schema_generated.rs is what planus generates from schema.fbs"
    else
        echo "schema_generated.rs differs from what planus generates from schema.fbs: run $0" >&2
        exit 1
    fi
else
    cp "$out" schema_generated.rs
fi
