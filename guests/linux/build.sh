#!/usr/bin/env bash
# Build webkvm's Linux guest from Debian packages, reproducibly.
#
# Writes, in guests/linux/:
#   Image           the kernel (arch/riscv/boot/Image) from linux-source-6.1
#                   with `make tinyconfig` + guests/linux/config
#   initramfs.cpio  an uncompressed newc archive: /init (guests/linux/init.c)
#                   and /bin (guests/linux/userland), static glibc programs,
#                   rv64gc
#   kernel.config   the kernel's full .config, for reference
#   userland/fptest.expected  fptest's output under qemu-riscv64-static
#                   (kept as committed when qemu-riscv64-static is missing)
#   COPYING, LICENSES/  the kernel's license, beside its binary
# and prints each output's size and sha256 (guests/linux/SOURCE.md records them).
#
# The committed outputs mean nothing else needs this script: when the Debian
# source package or the cross compiler is missing it says so and exits 0.
#
# Usage: bash guests/linux/build.sh
# Env:   LINUX_SOURCE_TAR=/usr/src/linux-source-6.1.tar.xz
#        LINUX_CROSS=riscv64-linux-gnu-  toolchain prefix (not CROSS: guests/build.sh uses that for its bare-metal one)
#        JOBS=<n>                     make -j (default: nproc)
#        KEEP_BUILD_DIR=<dir>         build there and keep it (default: a temp dir, removed)
#        USERLAND_ONLY=1              with KEEP_BUILD_DIR of an earlier run: rebuild only
#                                     /init, the userland and the initramfs
#        MIPS_KERNEL_DIR=<dir>        the reference loop's kernel.c/kernel.h for /bin/mips
#                                     (default: <repo>/../shared/anchors/guest-mips, as guests/build.sh)
#        QEMU_USER=qemu-riscv64-static  runs fptest for fptest.expected
set -euo pipefail

export LC_ALL=C TZ=UTC

LINUX_SOURCE_TAR=${LINUX_SOURCE_TAR:-/usr/src/linux-source-6.1.tar.xz}
CROSS=${LINUX_CROSS:-riscv64-linux-gnu-}
JOBS=${JOBS:-$(nproc)}
EXPECTED_SOURCE=6.1.192-3
EXPECTED_GCC=12.2.0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
MIPS_KERNEL_DIR=${MIPS_KERNEL_DIR:-$HERE/../../../shared/anchors/guest-mips}
QEMU_USER=${QEMU_USER:-qemu-riscv64-static}

missing=()
[ -f "$LINUX_SOURCE_TAR" ] || missing+=("$LINUX_SOURCE_TAR (package linux-source-6.1)")
command -v "${CROSS}gcc" >/dev/null 2>&1 || missing+=("${CROSS}gcc (package gcc-riscv64-linux-gnu)")
for tool in make cc flex bison bc xz perl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -f /usr/riscv64-linux-gnu/lib/libc.a ] || missing+=("glibc for riscv64 (package libc6-dev-riscv64-cross)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "guests/linux/build.sh: skipped, missing: ${missing[*]}."
    echo "  The committed guests/linux/Image and initramfs.cpio are unchanged. To rebuild them:"
    echo "  apt-get install -y linux-source-6.1 gcc-riscv64-linux-gnu libc6-dev-riscv64-cross make flex bison bc xz-utils"
    exit 0
fi
if [ ! -f "$MIPS_KERNEL_DIR/kernel.c" ]; then
    echo "guests/linux/build.sh: error: $MIPS_KERNEL_DIR/kernel.c not found (set MIPS_KERNEL_DIR)." >&2
    exit 1
fi
if command -v dpkg-query >/dev/null 2>&1; then
    got=$(dpkg-query -W -f '${Version}' linux-source-6.1 2>/dev/null || true)
    [ "$got" = "$EXPECTED_SOURCE" ] || echo "guests/linux/build.sh: warning: linux-source-6.1 is" \
        "'$got', not $EXPECTED_SOURCE; the outputs will differ from SOURCE.md." >&2
fi
[ "$("${CROSS}gcc" -dumpfullversion)" = "$EXPECTED_GCC" ] || echo "guests/linux/build.sh: warning:" \
    "${CROSS}gcc is $("${CROSS}gcc" -dumpfullversion), not $EXPECTED_GCC; the outputs will differ." >&2

# Everything that could stamp the build: fixed.
export SOURCE_DATE_EPOCH=0
export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 1970"
export KBUILD_BUILD_USER=webkvm KBUILD_BUILD_HOST=webkvm KBUILD_BUILD_VERSION=1
KMAKE=(make -s ARCH=riscv "CROSS_COMPILE=$CROSS" LOCALVERSION= "-j$JOBS")

if [ -n "${KEEP_BUILD_DIR:-}" ]; then
    WORK=$KEEP_BUILD_DIR
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi

start=$(date +%s)
if [ -n "${USERLAND_ONLY:-}" ]; then
    [ -n "${KEEP_BUILD_DIR:-}" ] && [ -x "$WORK/linux-source-6.1/usr/gen_init_cpio" ] || {
        echo "guests/linux/build.sh: USERLAND_ONLY needs KEEP_BUILD_DIR of an earlier full run" >&2; exit 1; }
    cd "$WORK/linux-source-6.1"
else
echo "unpacking $LINUX_SOURCE_TAR"
rm -rf "$WORK/linux-source-6.1"
tar -xf "$LINUX_SOURCE_TAR" -C "$WORK"
cd "$WORK/linux-source-6.1"   # an in-tree build: paths in the image are relative

echo "configuring: tinyconfig + guests/linux/config"
"${KMAKE[@]}" tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m .config "$HERE/config" >/dev/null
"${KMAKE[@]}" olddefconfig
# A fragment line Kconfig dropped (a dependency not met, a typo) is an error.
bad=0
while IFS= read -r line; do
    case $line in
        CONFIG_*) want=$line ;;
        "# CONFIG_"*" is not set") want=$line ;;
        *) continue ;;
    esac
    sym=${want#\# }
    sym=${sym%%[= ]*}
    if ! grep -qxF -- "$want" .config; then
        # "not set" also holds when the symbol is absent (its dependencies are off).
        if [ "${want:0:1}" = "#" ] && ! grep -q "^$sym=" .config; then continue; fi
        echo "guests/linux/build.sh: error: '$want' did not survive olddefconfig" \
             "(got: $(grep -E "^(# )?$sym[= ]" .config || echo absent))" >&2
        bad=1
    fi
done < "$HERE/config"
[ $bad = 0 ] || exit 1

echo "building Image (make -j$JOBS)"
"${KMAKE[@]}" Image
fi

echo "building /init and the userland (glibc, static, rv64gc)"
U=$HERE/userland
# -ffile-prefix-map: no build path in the binaries; -s: no symbols.
UCFLAGS=(-static -O2 -Wall -Wextra -Werror -fno-ident "-ffile-prefix-map=$HERE=." "-ffile-prefix-map=$MIPS_KERNEL_DIR=guest-mips"
         -Wl,--build-id=none -s)
"${CROSS}gcc" "${UCFLAGS[@]}" -o "$WORK/init" "$HERE/init.c"
"${CROSS}gcc" "${UCFLAGS[@]}" -I "$MIPS_KERNEL_DIR" -o "$WORK/box" \
    "$U/box.c" "$U/sh.c" "$U/tools.c" "$U/memtouch.c" "$U/dirty.c" "$U/mips.c" "$MIPS_KERNEL_DIR/kernel.c"
"${CROSS}gcc" "${UCFLAGS[@]}" -o "$WORK/fptest" "$U/fptest.c" -lm
"${CROSS}gcc" "${UCFLAGS[@]}" -o "$WORK/hello" "$U/hello.c"
if command -v "$QEMU_USER" >/dev/null 2>&1; then
    "$QEMU_USER" "$WORK/fptest" > "$U/fptest.expected"
    echo "  fptest.expected: $(wc -l < "$U/fptest.expected") lines from $("$QEMU_USER" --version | head -n1)"
else
    echo "guests/linux/build.sh: warning: $QEMU_USER not found: userland/fptest.expected kept as committed" >&2
fi

echo "building initramfs.cpio"
# /bin/sh and the tools are one program (box.c picks the applet by name), hard-linked.
cat > "$WORK/initramfs.list" <<EOF
dir /bin 0755 0 0
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 01777 0 0
file /init $WORK/init 0755 0 0
file /bin/sh $WORK/box 0755 0 0 /bin/ls /bin/cat /bin/free /bin/uname /bin/memtouch /bin/dirty /bin/mips
file /bin/fptest $WORK/fptest 0755 0 0
file /bin/hello $WORK/hello 0755 0 0
EOF
# gen_init_cpio takes a file's own mtime
touch -d "@$SOURCE_DATE_EPOCH" "$WORK/init" "$WORK/box" "$WORK/fptest" "$WORK/hello"
usr/gen_init_cpio -t "$SOURCE_DATE_EPOCH" "$WORK/initramfs.list" > "$WORK/initramfs.cpio"

[ -n "${USERLAND_ONLY:-}" ] || cp arch/riscv/boot/Image "$HERE/Image"
cp "$WORK/initramfs.cpio" "$HERE/initramfs.cpio"
cp .config "$HERE/kernel.config"
cp COPYING "$HERE/COPYING"
mkdir -p "$HERE/LICENSES/preferred" "$HERE/LICENSES/exceptions"
cp LICENSES/preferred/GPL-2.0 "$HERE/LICENSES/preferred/GPL-2.0"
cp LICENSES/exceptions/Linux-syscall-note "$HERE/LICENSES/exceptions/Linux-syscall-note"

echo "built in $(( $(date +%s) - start )) s with $("${CROSS}gcc" --version | head -n1)"
echo "  $(sha256sum "$LINUX_SOURCE_TAR" | cut -d' ' -f1)  $(basename "$LINUX_SOURCE_TAR")"
for f in Image initramfs.cpio kernel.config; do
    printf '  %s  %s (%d bytes)\n' "$(sha256sum < "$HERE/$f" | cut -d' ' -f1)" "$f" "$(wc -c < "$HERE/$f")"
done
for f in init box fptest hello; do
    printf '  %s  %s (inside initramfs.cpio, %d bytes)\n' "$(sha256sum < "$WORK/$f" | cut -d' ' -f1)" "$f" "$(wc -c < "$WORK/$f")"
done
printf '  %s  userland/fptest.expected (%d bytes)\n' "$(sha256sum < "$U/fptest.expected" | cut -d' ' -f1)" "$(wc -c < "$U/fptest.expected")"
