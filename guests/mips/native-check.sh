#!/usr/bin/env bash
# Build kernel.c natively with the host cc and print the line the mips
# guest would print for the given iteration count (0 = 40,000,000):
#   mips iters=<n> checksum=0x<16 hex>
# Usage: bash guests/mips/native-check.sh [iters]
# Env:   CC (default cc), MIPS_KERNEL_DIR (default <repo>/../shared/anchors/guest-mips)
set -euo pipefail

ITERS=${1:-1000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
KDIR=${MIPS_KERNEL_DIR:-$ROOT/../shared/anchors/guest-mips}
HOSTCC=${CC:-cc}

if [ ! -f "$KDIR/kernel.c" ]; then
    echo "native-check.sh: error: $KDIR/kernel.c not found (set MIPS_KERNEL_DIR)." >&2
    exit 1
fi
if ! command -v "$HOSTCC" >/dev/null 2>&1; then
    echo "native-check.sh: error: host compiler '$HOSTCC' not found." >&2
    exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cat > "$TMP/main.c" <<'C'
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernel.h"

int main(int argc, char **argv)
{
    uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000;
    if (iters == 0)
        iters = 40000000;
    kernel_init(12345);
    uint64_t sum = kernel_run(iters, 0xC0FFEE);
    printf("mips iters=%" PRIu64 " checksum=0x%016" PRIx64 "\n", iters, sum);
    return 0;
}
C

"$HOSTCC" -O2 -I"$KDIR" "$KDIR/kernel.c" "$TMP/main.c" -o "$TMP/mips-native"
"$TMP/mips-native" "$ITERS"
