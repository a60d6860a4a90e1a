# Sourced by the bare-metal guest build scripts (guests/build.sh,
# guests/riscv-tests/build.sh): sets CC and OBJCOPY for the cross toolchain
# (CROSS overrides its prefix), fails unless both exist, and warns unless gcc
# is the version the committed images were built with. $1: the caller's name.
CROSS=${CROSS:-riscv64-unknown-elf-}
CC=${CROSS}gcc
OBJCOPY=${CROSS}objcopy
if ! command -v "$CC" >/dev/null 2>&1 || ! command -v "$OBJCOPY" >/dev/null 2>&1; then
    echo "$1: error: RISC-V cross compiler '$CC' (and '$OBJCOPY') not found." >&2
    echo "  Install it with:  apt-get install -y gcc-riscv64-unknown-elf" >&2
    exit 1
fi
EXPECTED_VERSION=12.2.0
if [ "$("$CC" -dumpfullversion)" != "$EXPECTED_VERSION" ]; then
    echo "$1: warning: $CC is $("$CC" -dumpfullversion), not $EXPECTED_VERSION;" \
         "the images may differ from the committed ones." >&2
fi
