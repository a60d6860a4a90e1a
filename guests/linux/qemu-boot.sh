#!/usr/bin/env bash
# Boot guests/linux/Image + initramfs.cpio on QEMU TCG: webkvm's baseline.
#
# CPU=webkvm (the default): QEMU's rv64 with what webkvm's vCPU lacks turned
# off (the B subsets, Sstc, Svpbmt, Svinval, Svnapot, H, V; C, F and D stay
# on: /init and /bin are glibc rv64gc programs), one hart, 128 MiB, and the
# firmware guests/linux/qemu-sbi (rv64ima, built here in a temporary
# directory): BASE, TIME, SRST and the legacy console; at power-off it prints
# how often the kernel made each call. It has no PMU extension, so user-mode
# counter reads trap there (/init says so).
# CPU=rv64gc: QEMU's default rv64 CPU (F and D on) and its default firmware
# (OpenSBI): the whole userland runs, e.g.
#   CPU=rv64gc RUN='uname,-a;free;memtouch,4;mips,100000;fptest' VERBOSE=1 bash guests/linux/qemu-boot.sh 1
#
# Each run checks the init's first line, its result line against
# guests/linux/reference.mjs, and that QEMU exits 0 at power-off, and prints
# the wall time from QEMU's start to the first line and to QEMU's exit.
#
# Usage: bash guests/linux/qemu-boot.sh [runs]      (default 5)
# Env:   CONSOLE=hvc0|ttyS0   the kernel's console (hvc0: SBI putchar; ttyS0: the 16550 + PLIC)
#        QEMU=qemu-system-riscv64  LINUX_CROSS=riscv64-linux-gnu-
#        DT=qemu|minimal      QEMU's own device tree, or guests/linux/minimal.dts
#                             (needs dtc): the least the kernel boots with
#        CPU=webkvm|rv64gc    see above
#        RUN=<commands>       the kernel's webkvm.run= (guests/linux/README.md), default poweroff
#        VERBOSE=1            print the whole boot log of the first run
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
QEMU=${QEMU:-qemu-system-riscv64}
CROSS=${LINUX_CROSS:-riscv64-linux-gnu-}
CONSOLE=${CONSOLE:-hvc0}
DT=${DT:-qemu}
CPU=${CPU:-webkvm}
RUN=${RUN:-poweroff}
RUNS=${1:-5}

for tool in "$QEMU" "${CROSS}gcc" "${CROSS}objcopy" node; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "guests/linux/qemu-boot.sh: skipped, $tool not found" \
             "(apt-get install -y qemu-system-misc gcc-riscv64-linux-gnu nodejs)."
        exit 0
    fi
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

case $CPU in
    webkvm) ;;
    rv64gc) [ "$DT" = qemu ] || { echo "guests/linux/qemu-boot.sh: CPU=rv64gc uses QEMU's own device tree" >&2; exit 1; } ;;
    *) echo "guests/linux/qemu-boot.sh: CPU must be webkvm or rv64gc" >&2; exit 1 ;;
esac

"${CROSS}gcc" -march=rv64ima_zicsr_zifencei -mabi=lp64 -mcmodel=medany -O2 -nostdlib \
    -ffreestanding -fno-builtin -fno-pic -fno-pie -no-pie -static -Wall -Wextra -Werror \
    -T "$HERE/qemu-sbi/sbi.ld" -Wl,--build-id=none \
    -o "$TMP/sbi.elf" "$HERE/qemu-sbi/entry.S" "$HERE/qemu-sbi/sbi.c"
"${CROSS}objcopy" -O binary "$TMP/sbi.elf" "$TMP/sbi.bin"

DTB_ARGS=()
if [ "$DT" = minimal ]; then
    if [ "$CONSOLE" != hvc0 ]; then
        echo "guests/linux/qemu-boot.sh: DT=minimal has no UART: use CONSOLE=hvc0" >&2
        exit 1
    fi
    if ! command -v dtc >/dev/null 2>&1; then
        echo "guests/linux/qemu-boot.sh: skipped, dtc not found (apt-get install -y device-tree-compiler)."
        exit 0
    fi
    dtc -q -I dts -O dtb -o "$TMP/minimal.dtb" "$HERE/minimal.dts"
    DTB_ARGS=(-dtb "$TMP/minimal.dtb")
fi

expected=$(node "$HERE/reference.mjs")
if [ "$CPU" = webkvm ]; then
    CPU_ARGS=(-cpu rv64,zba=off,zbb=off,zbc=off,zbs=off,sstc=off,svpbmt=off,svinval=off,svnapot=off,h=off,v=off
              -bios "$TMP/sbi.bin")
else
    CPU_ARGS=(-cpu rv64)
fi
ARGS=(-M virt "${CPU_ARGS[@]}" -smp 1 -m 128M -nographic -monitor none
      -kernel "$HERE/Image" -initrd "$HERE/initramfs.cpio"
      ${DTB_ARGS[@]+"${DTB_ARGS[@]}"} -append "console=$CONSOLE earlycon=sbi webkvm.run=$RUN")
echo "$QEMU $(${QEMU} --version | head -n1 | sed 's/^QEMU emulator //')"
echo "  ${ARGS[*]}"

# Reads the console, noting when the init's lines arrive.
watch_console() {   # watch_console LOG TIMES
    local line
    while IFS= read -r line; do
        while [[ $line == *$'\r' ]]; do line=${line%$'\r'}; done   # OpenSBI adds a \r of its own
        case $line in
            "webkvm-init: hello from Linux "*) echo "first $EPOCHREALTIME" >> "$2" ;;
        esac
        printf '%s\n' "$line" >> "$1"
    done
}

ok=1
for run in $(seq 1 "$RUNS"); do
    log=$TMP/log.$run times=$TMP/times.$run
    : > "$log"; : > "$times"
    start=$EPOCHREALTIME
    set +e
    timeout 60 "$QEMU" "${ARGS[@]}" < /dev/null 2>&1 | watch_console "$log" "$times"
    rc=${PIPESTATUS[0]}
    set -e
    end=$EPOCHREALTIME
    first=$(sed -n 's/^first //p' "$times")
    problems=()
    [ "$rc" = 0 ] || problems+=("QEMU exit status $rc")
    [ -n "$first" ] || problems+=("no first line")
    grep -qxF -- "${expected}" "$log" || problems+=("no '$expected'")
    if [ "$CPU" = webkvm ]; then
        grep -q '^sbi: calls .*0x53525354/0=1' "$log" || problems+=("no SRST shutdown")
    else
        grep -q 'reboot: Power down' "$log" || problems+=("no power-off")
    fi
    awk -v s="$start" -v f="${first:-$start}" -v e="$end" -v r="$run" -v p="${problems[*]:-ok}" \
        'BEGIN { printf "  run %d: first line %.3f s, power-off %.3f s: %s\n", r, f - s, e - s, p }' |
        tee -a "$TMP/runs"
    [ ${#problems[@]} = 0 ] || ok=0
    if [ "$run" = 1 ] && { [ -n "${VERBOSE:-}" ] || [ ${#problems[@]} != 0 ]; }; then
        sed 's/^/    | /' "$log"
    fi
done
grep -h '^webkvm-init: \|^sbi: calls' "$TMP/log.$RUNS" | sed 's/^/  /'
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fastest() { sort -n | head -n1; }
for stat in median fastest; do
    echo "  $stat of $RUNS: first line $(awk '{ print $5 }' "$TMP/runs" | $stat) s," \
         "power-off $(awk '{ print $8 }' "$TMP/runs" | $stat) s (console=$CONSOLE, DT=$DT)"
done
[ $ok = 1 ] || { echo "guests/linux/qemu-boot.sh: FAILED" >&2; exit 1; }
