#!/usr/bin/env bash
# Runs every fuzz target in turn (one at a time: the machines have 2 cores).
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default 300, every target)
# Needs cargo-fuzz; on a stable toolchain RUSTC_BOOTSTRAP=1 lets it use
# -Zsanitizer. Corpora go to fuzz/corpus/ (ignored by git), seeded from
# fuzz/seeds/; crashes to fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-300}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(soap_response rest_response sandbox_envelope soap_envelope identity_answer identity_reader lookup_answers ajo_answer)
export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    case "$target" in
        rest_response|identity_answer|identity_reader|lookup_answers|ajo_answer) dict=dicts/json.dict ;;
        *) dict=dicts/xml.dict ;;
    esac
    mkdir -p "corpus/$target"
    cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
    echo "== $target ($secs s)"
    cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=2 -max_len=16384 \
        -dict="$dict" -print_final_stats=1
done
