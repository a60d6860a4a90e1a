#!/usr/bin/env bash
# Build riscv-tests' ISA tests for webkvm, reproducibly, with webkvm's own
# S-mode environment (env/) in place of upstream's M-mode one.
#
# Writes guests/riscv-tests/bin/<suite>-p-<test>.bin (flat images loaded at
# GPA 0x80000000), LICENSE (upstream's, for the binaries) and SOURCE.md (the
# repository, commit, compiler and the sha256 of every image).
#
# Usage: bash guests/riscv-tests/build.sh [SRC]
#   SRC (or RISCV_TESTS_SRC): a git repository holding the pinned commit
#   (bare or not; the commit is exported from it), or a plain source tree
#   (used as it is). Without one, the pinned commit is fetched from GitHub.
# Env:   CROSS=riscv64-unknown-elf-      toolchain prefix
#        RVTEST_BASE=0x80000000           link address (qemu-check.sh: 0x80200000)
#        RVTEST_OUT=<dir>                 write <name>.elf and .bin there instead,
#                                         leaving bin/, LICENSE and SOURCE.md alone
set -euo pipefail

export LC_ALL=C TZ=UTC
unset SOURCE_DATE_EPOCH

REPO_URL=https://github.com/riscv-software-src/riscv-tests
COMMIT=34e6b6d1e7936b526075432fb730d89148623484

# The suites, and the rv64si tests left out: they are written for M-mode
# (RVTEST_RV64M: mstatus.MPRV, mepc / mret, their own mtvec handler), which a
# KVM guest does not have. Every other test of the suites' Makefrags is built.
SUITES=(rv64ui rv64um rv64ua rv64uc rv64uf rv64ud rv64si)
EXCLUDED=(rv64si-dirty rv64si-icache-alias)

source "$(dirname "${BASH_SOURCE[0]}")/../common/cross-gcc.sh" riscv-tests/build.sh

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
cd "$HERE"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The source: exported from a repository at COMMIT, or a tree as given.
SRC_ARG=${1:-${RISCV_TESTS_SRC:-}}
SRC=$TMP/src
mkdir -p "$SRC"
if [ -n "$SRC_ARG" ] && git -C "$SRC_ARG" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
    git -C "$SRC_ARG" archive "$COMMIT" LICENSE isa | tar -x -C "$SRC"
    ORIGIN="exported from $COMMIT"
elif [ -n "$SRC_ARG" ] && [ -d "$SRC_ARG/isa" ]; then
    cp -R "$SRC_ARG/LICENSE" "$SRC_ARG/isa" "$SRC/"
    ORIGIN="a source tree (not checked against $COMMIT)"
    echo "riscv-tests/build.sh: warning: $SRC_ARG is not a git repository with $COMMIT;" \
         "building it as it is." >&2
elif [ -n "$SRC_ARG" ]; then
    echo "riscv-tests/build.sh: error: $SRC_ARG has neither commit $COMMIT nor an isa/ directory." >&2
    exit 1
else
    git init -q "$TMP/clone"
    git -C "$TMP/clone" fetch -q --depth 1 "$REPO_URL" "$COMMIT"
    git -C "$TMP/clone" archive "$COMMIT" LICENSE isa | tar -x -C "$SRC"
    ORIGIN="exported from $COMMIT"
fi

# A suite's tests, from its Makefrag's "<suite>_sc_tests = \ ..." list.
suite_tests() {
    sed -n "/^$1_sc_tests = /,/^\$/p" "$SRC/isa/$1/Makefrag" |
        sed -e "s/^$1_sc_tests = //" -e 's/\\//g' | tr -s ' \t' '\n\n' | sed '/^$/d'
}

is_excluded() {
    local e
    for e in "${EXCLUDED[@]}"; do [ "$e" = "$1" ] && return 0; done
    return 1
}

# Upstream's flags for the "p" tests, with this environment's headers and
# link map; no build id, so the images depend on the sources alone.
FLAGS=(
    -march=rv64g -mabi=lp64d -static -mcmodel=medany -fvisibility=hidden
    -nostdlib -nostartfiles
    -Ienv -I"$SRC/isa/macros/scalar"
    -Tenv/link.ld -Wl,--defsym=RVTEST_BASE="${RVTEST_BASE:-0x80000000}"
    -Wl,--build-id=none -Wl,--no-warn-rwx-segments
)

OUT=$TMP/bin
mkdir -p "$OUT"
echo "building riscv-tests with $("$CC" --version | head -n1)"
names=()
for suite in "${SUITES[@]}"; do
    while read -r t; do
        is_excluded "$suite-$t" && continue
        name=$suite-p-$t
        "$CC" "${FLAGS[@]}" "$SRC/isa/$suite/$t.S" env/rvtest.S -o "$TMP/$name.elf"
        "$OBJCOPY" -O binary "$TMP/$name.elf" "$OUT/$name.bin"
        chmod 644 "$OUT/$name.bin"
        [ -n "${RVTEST_OUT:-}" ] && mv "$TMP/$name.elf" "$OUT/"
        names+=("$name")
    done < <(suite_tests "$suite")
done

if [ -n "${RVTEST_OUT:-}" ]; then
    mkdir -p "$RVTEST_OUT"
    mv "$OUT"/* "$RVTEST_OUT"/
    printf '%s\n' "${names[@]}" > "$RVTEST_OUT/tests.txt"
    echo "  riscv-tests: ${#names[@]} tests in $RVTEST_OUT"
    exit 0
fi

rm -rf bin
mv "$OUT" bin
cp "$SRC/LICENSE" LICENSE

{
    echo "# riscv-tests: where the binaries come from"
    echo
    echo "- Repository: $REPO_URL"
    echo "- Commit: \`$COMMIT\` (its \`isa/\` tests and \`isa/macros/scalar/test_macros.h\`;"
    echo "  upstream's \`env\` submodule is not used: \`env/\` here replaces it)"
    echo "- License: BSD-3-Clause, \`LICENSE\` (upstream's, copied by the build)"
    echo "- Compiler: \`$("$CC" --version | head -n1)\`, binutils \`$("$OBJCOPY" --version | head -n1)\`"
    echo "- Built by \`build.sh\` (\`npm run build:guests\`) from $( [ "$ORIGIN" = "exported from $COMMIT" ] && echo "the pinned commit" || echo "$ORIGIN")"
    echo "- Left out: ${EXCLUDED[*]} (M-mode tests)"
    echo
    echo "sha256 of every image (\`bin/\`, ${#names[@]} tests, \`sha256sum -c\` format):"
    echo
    echo '```'
    (cd bin && for n in "${names[@]}"; do sha256sum "$n.bin"; done)
    echo '```'
} > SOURCE.md
echo "  riscv-tests: ${#names[@]} images in guests/riscv-tests/bin, $(cat bin/*.bin | wc -c) bytes," \
     "sha256 of all: $(cat bin/*.bin | sha256sum | cut -d' ' -f1)"
