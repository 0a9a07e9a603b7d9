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
if ! "$PLANUS" --version 2>/dev/null | grep -q '1\.3\.0'; then
    echo "needs planus-cli 1.3.0 (set PLANUS to its path): cargo install planus-cli --version 1.3.0 --locked" >&2
    exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$PLANUS" rust -o "$out" schema.fbs
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
