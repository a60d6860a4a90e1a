#!/usr/bin/env bash
# Build webkvm's Linux guest from Debian packages, reproducibly.
#
# Writes, in guests/linux/:
#   Image           the kernel (arch/riscv/boot/Image) from linux-source-6.1
#                   with `make tinyconfig` + guests/linux/config
#   initramfs.cpio  an uncompressed newc archive: /dev, /dev/console, /init
#                   (guests/linux/init.c, static, the kernel tree's nolibc)
#   kernel.config   the kernel's full .config, for reference
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
set -euo pipefail

export LC_ALL=C TZ=UTC

LINUX_SOURCE_TAR=${LINUX_SOURCE_TAR:-/usr/src/linux-source-6.1.tar.xz}
CROSS=${LINUX_CROSS:-riscv64-linux-gnu-}
JOBS=${JOBS:-$(nproc)}
EXPECTED_SOURCE=6.1.192-3
EXPECTED_GCC=12.2.0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

missing=()
[ -f "$LINUX_SOURCE_TAR" ] || missing+=("$LINUX_SOURCE_TAR (package linux-source-6.1)")
command -v "${CROSS}gcc" >/dev/null 2>&1 || missing+=("${CROSS}gcc (package gcc-riscv64-linux-gnu)")
for tool in make cc flex bison bc xz perl rsync; do   # rsync: headers_install
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "guests/linux/build.sh: skipped, missing: ${missing[*]}."
    echo "  The committed guests/linux/Image and initramfs.cpio are unchanged. To rebuild them:"
    echo "  apt-get install -y linux-source-6.1 gcc-riscv64-linux-gnu make flex bison bc xz-utils rsync"
    exit 0
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
"${KMAKE[@]}" headers_install INSTALL_HDR_PATH="$WORK/hdr" >/dev/null

echo "building /init"
"${CROSS}gcc" -march=rv64ima_zicsr_zifencei -mabi=lp64 -Os -static -nostdlib \
    -fno-pie -no-pie -ffreestanding -fno-stack-protector -fno-ident \
    -fno-asynchronous-unwind-tables -fno-unwind-tables -Wall -Wextra -Werror \
    -I tools/include/nolibc -I "$WORK/hdr/include" \
    -Wl,--build-id=none -Wl,-z,separate-code -s -o "$WORK/init" "$HERE/init.c"

echo "building initramfs.cpio"
cat > "$WORK/initramfs.list" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
file /init $WORK/init 0755 0 0
EOF
touch -d "@$SOURCE_DATE_EPOCH" "$WORK/init"   # gen_init_cpio takes a file's own mtime
usr/gen_init_cpio -t "$SOURCE_DATE_EPOCH" "$WORK/initramfs.list" > "$WORK/initramfs.cpio"

cp arch/riscv/boot/Image "$HERE/Image"
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
printf '  %s  init (inside initramfs.cpio, %d bytes)\n' "$(sha256sum < "$WORK/init" | cut -d' ' -f1)" "$(wc -c < "$WORK/init")"
