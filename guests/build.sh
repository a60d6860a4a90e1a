#!/usr/bin/env bash
# Build every webkvm guest, reproducibly.
#
# For each guest NAME this writes guests/NAME/NAME.elf and guests/NAME/NAME.bin
# (flat image loaded at GPA 0x80000000). Flags are fixed, paths are rewritten
# so the output does not depend on where the repository is checked out,
# inputs are compiled and linked in sorted order, no build id, no timestamps.
# Then guests/riscv-tests/build.sh rebuilds riscv-tests' ISA tests
# (WEBKVM_SKIP_RISCV_TESTS=1 skips them) and guests/linux/build.sh the Linux
# guest (minutes; it skips itself when its Debian packages are missing;
# WEBKVM_SKIP_LINUX=1 skips it).
#
# Usage: bash guests/build.sh            (from anywhere)
# Env:   CROSS=riscv64-unknown-elf-      toolchain prefix
#        MIPS_KERNEL_DIR=<dir>            default: <repo>/../shared/anchors/guest-mips
set -euo pipefail

export LC_ALL=C TZ=UTC
unset SOURCE_DATE_EPOCH   # nothing below uses it; make that explicit

source "$(dirname "${BASH_SOURCE[0]}")/common/cross-gcc.sh" guests/build.sh

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

MIPS_KERNEL_DIR=${MIPS_KERNEL_DIR:-../shared/anchors/guest-mips}
if [ ! -f "$MIPS_KERNEL_DIR/kernel.c" ]; then
    echo "guests/build.sh: error: $MIPS_KERNEL_DIR/kernel.c not found (set MIPS_KERNEL_DIR)." >&2
    exit 1
fi
KDIR_ABS=$(cd "$MIPS_KERNEL_DIR" && pwd -P)

# Path rewriting: the repository root becomes ".", the kernel directory
# becomes "guest-mips", whichever spelling (relative or absolute) is seen.
PATHMAP=(
    "-ffile-prefix-map=$ROOT/=./"
    "-ffile-prefix-map=$ROOT=."
    "-ffile-prefix-map=$KDIR_ABS=guest-mips"
    "-ffile-prefix-map=$MIPS_KERNEL_DIR=guest-mips"
    "-fdebug-prefix-map=$ROOT=."
    "-fdebug-prefix-map=$KDIR_ABS=guest-mips"
    "-fdebug-prefix-map=$MIPS_KERNEL_DIR=guest-mips"
)

# Flags for all guest code except kernel.c.
CFLAGS=(
    -march=rv64ima_zicsr_zifencei -mabi=lp64 -mcmodel=medany
    -O2 -nostdlib -ffreestanding -fno-pic -static
    -fno-tree-loop-distribute-patterns
    -fno-asynchronous-unwind-tables -fno-unwind-tables
    -fno-ident -g -pipe
    -Wall -Wextra -Werror -Wdate-time
    -Iguests/common
)
# kernel.c: exactly the reference flags, plus -ffreestanding (for gcc's own
# <stdint.h>), debug info and path rewriting, none of which change the code.
KERNEL_CFLAGS=(
    -O2 -march=rv64im_zicsr -mabi=lp64 -mcmodel=medany
    -ffreestanding -fno-ident -g -pipe
)
LDFLAGS=(
    -march=rv64ima_zicsr_zifencei -mabi=lp64
    -nostdlib -static -fno-pic
    -T guests/common/guest.ld
    -Wl,--build-id=none
    -Wl,--no-warn-rwx-segments
    -Wl,--sort-section=name
)

COMMON_SRCS=(guests/common/runtime.c guests/common/start.S)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

compile() {   # compile SRC OUT FLAGS...
    local src=$1 out=$2
    shift 2
    "$CC" "$@" "${PATHMAP[@]}" -c "$src" -o "$out"
}

build_guest() {   # build_guest NAME [OUT]: OUT (default NAME) is the image's name in guests/NAME
    local name=$1 out=${2:-$1} dir=guests/$1 objdir=$TMP/${2:-$1} src i=0
    local -a srcs objs
    mkdir -p "$objdir"
    mapfile -t srcs < <(shopt -s nullglob
                        printf '%s\n' "${COMMON_SRCS[@]}" "$dir"/*.c "$dir"/*.S | sort)
    for src in "${srcs[@]}"; do
        i=$((i + 1))
        objs+=("$objdir/$(printf '%02d' "$i")-$(basename "$src").o")
        compile "$src" "${objs[-1]}" "${CFLAGS[@]}" ${EXTRA_CFLAGS:+"${EXTRA_CFLAGS[@]}"}
    done
    if [ "$name" = mips ] || [ "$name" = mips-qemu ]; then
        objs+=("$objdir/99-kernel.c.o")
        compile "$MIPS_KERNEL_DIR/kernel.c" "${objs[-1]}" "${KERNEL_CFLAGS[@]}"
    fi
    "$CC" "${LDFLAGS[@]}" "${objs[@]}" -o "$TMP/$out.elf"
    "$OBJCOPY" -O binary "$TMP/$out.elf" "$TMP/$out.bin"
    mv -f "$TMP/$out.elf" "$dir/$out.elf"
    mv -f "$TMP/$out.bin" "$dir/$out.bin"
    printf '  %-8s %7d bytes  sha256 %s\n' "$out" "$(wc -c < "$dir/$out.bin")" \
        "$(sha256sum < "$dir/$out.bin" | cut -d' ' -f1)"
}

GUESTS=(dirtier dirtylog hello memtest mips paging smp)
echo "building guests with $("$CC" --version | head -n1)"
for g in "${GUESTS[@]}"; do
    EXTRA_CFLAGS=()
    [ "$g" = mips ] && EXTRA_CFLAGS=("-I$MIPS_KERNEL_DIR")
    build_guest "$g"
done
# The reference workload for QEMU's virt machine (bench/guest.js's live
# baseline): guests/mips's main.c and kernel.c and the common runtime, with
# mips-qemu/start.S (M-mode, -bios none) in place of common/start.S.
COMMON_SRCS=(guests/common/runtime.c guests/mips/main.c)
EXTRA_CFLAGS=("-I$MIPS_KERNEL_DIR")
build_guest mips-qemu
COMMON_SRCS=(guests/common/runtime.c guests/common/start.S)
# The reference workload again with the C extension (compressed code, for the
# translation tier's bench row): every -march gains "c".
CFLAGS=("${CFLAGS[@]/#-march=rv64ima_/-march=rv64imac_}")
KERNEL_CFLAGS=("${KERNEL_CFLAGS[@]/#-march=rv64im_/-march=rv64imc_}")
LDFLAGS=("${LDFLAGS[@]/#-march=rv64ima_/-march=rv64imac_}")
EXTRA_CFLAGS=("-I$MIPS_KERNEL_DIR")
build_guest mips mips-rvc

# riscv-tests' ISA tests, with their own environment and script (seconds): the
# pinned upstream commit from RISCV_TESTS_SRC (a repository or a source tree)
# or else from GitHub; WEBKVM_SKIP_RISCV_TESTS=1 skips them.
if [ -n "${WEBKVM_SKIP_RISCV_TESTS:-}" ]; then
    echo "guests/riscv-tests: skipped (WEBKVM_SKIP_RISCV_TESTS is set)"
else
    bash guests/riscv-tests/build.sh
fi

# The Linux guest: minutes, not seconds, and its own packages; it skips itself
# (and says so) when they are missing, and WEBKVM_SKIP_LINUX=1 skips it on purpose.
if [ -n "${WEBKVM_SKIP_LINUX:-}" ]; then
    echo "guests/linux: skipped (WEBKVM_SKIP_LINUX is set)"
else
    echo "building guests/linux"
    bash guests/linux/build.sh
fi
