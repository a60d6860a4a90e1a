#!/usr/bin/env bash
# A check of the environment (env/) on another implementation, not part of
# CI: builds every test at 0x80200000 and runs it on QEMU's virt machine
# under its default OpenSBI, where it runs in S-mode as on webkvm. QEMU's
# default CPU has F and D, so rv64uf / rv64ud run too. Prints one line per
# test and exits 1 if any did not print "rvtest: pass".
#
# Usage: bash guests/riscv-tests/qemu-check.sh [SRC]   (SRC as for build.sh)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
QEMU=${QEMU:-qemu-system-riscv64}
command -v "$QEMU" >/dev/null || { echo "qemu-check.sh: $QEMU not found" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RVTEST_BASE=0x80200000 RVTEST_OUT="$TMP" bash "$HERE/build.sh" "$@"
bad=0
while read -r name; do
    out=$(timeout 20 "$QEMU" -M virt -nographic -bios default -kernel "$TMP/$name.elf" \
          -monitor none -serial stdio < /dev/null 2>&1 | tr -d '\r' | grep '^rvtest:' || true)
    if [ "$out" = "rvtest: pass" ]; then
        echo "ok   $name"
    else
        echo "FAIL $name: ${out:-no verdict}"
        bad=1
    fi
done < "$TMP/tests.txt"
exit $bad
