#!/usr/bin/env bash
# Regenerates README's figure gallery: every shipped experiment (`aedyn reproduce --all`, release
# build) into results/, then each plot's PNG copied to docs/figures/<experiment>-<plot>.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release
mkdir -p results
./target/release/aedyn reproduce --all --out-dir results --json > results/summary.json
for dir in results/*/; do
    name=$(basename "$dir")
    for png in "$dir"*.png; do
        cp "$png" "docs/figures/$name-$(basename "$png")"
    done
done
# Each experiment's time, for README.
sed -e 's/"seconds":/\n&/g' results/summary.json | grep -o '"seconds":[0-9.]*\|"experiment":"[a-z-]*"' || true
