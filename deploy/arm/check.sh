#!/usr/bin/env bash
# Run the runtime as a Raspberry Pi does, under QEMU user-mode emulation, and require the same
# digits as on this machine.
#
#   sudo deploy/arm/check.sh                         # bookworm and trixie, arm64 and armhf
#   sudo deploy/arm/check.sh bookworm-arm64          # one target: SUITE-ARCH
#
# For each target: a Debian root for the ARM architecture (mmdebstrap, cached under
# ~/.cache/audiomnist-edge/arm, never modified after it is built), the project's wheel installed
# for it (arm64: the host's pip with --platform/--target; armhf: the root's own pip, offline, from
# wheels the host's pip fetched, over Debian's NumPy 1.x), then `predict --json` on FILES FSDD
# recordings and `bench` inside the root (chroot, env -i, /proc and /sys mounted, a Raspberry Pi's
# /proc/cpuinfo bound over the emulated one, QEMU_CPU pinned: qemu's default "max" CPU has SVE and
# gives wrong int8 results). Emulated timings mean nothing; the digits must equal this machine's,
# except where this machine's decision lies within 0.02 of a gate (compare_decisions.py: one int8
# step elsewhere may cross it); such files are named in the summary line.
# predict --json must also write nothing to stderr but its summary line (no interpreter chatter).
#
# Needs root, qemu-user-static, binfmt-support, mmdebstrap, arch-test. Environment: FILES (default 120),
# PYTHON (host Python with pip, default .venv/bin/python), AUDIOMNIST_EDGE_FSDD, AUDIOMNIST_EDGE_ARM_CACHE,
# DEBIAN_MIRROR (default http://deb.debian.org/debian), ARM64_CPU / ARMHF_CPU (QEMU CPU models).
# trixie-armhf (Python 3.13) has no interpreter: there the check is that predict refuses in one line.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
HERE=$REPO/deploy/arm
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
FILES=${FILES:-120}
FSDD=${AUDIOMNIST_EDGE_FSDD:-$REPO/../shared/datasets/fsdd}
CACHE=${AUDIOMNIST_EDGE_ARM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/audiomnist-edge/arm}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(bookworm-arm64 trixie-arm64 bookworm-armhf trixie-armhf)

die() { echo "error: $*" >&2; exit 1; }
say() { echo "[arm] $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (chroot and mounts need it)"
for tool in mmdebstrap chroot mount; do command -v $tool >/dev/null || die "$tool is not installed"; done
[ -x "$PYTHON" ] || die "no host Python at $PYTHON (set PYTHON)"
[ -d "$FSDD/recordings" ] || die "FSDD not found at $FSDD (set AUDIOMNIST_EDGE_FSDD)"
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
command -v update-binfmts >/dev/null && update-binfmts --enable >/dev/null 2>&1 || true

WORK=$(mktemp -d /tmp/audiomnist-arm.XXXXXX)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
MOUNTS=()
unmount_all() {  # newest first (/proc/cpuinfo before /proc)
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null || true; done
    MOUNTS=()
}
cleanup() {
    unmount_all
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the wheel, the files and this machine's digits -------------------------------------------
say "building the wheel"
"$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$REPO" >/dev/null
WHEEL=$(ls "$WORK"/dist/audiomnist_edge-*.whl)
# FILES recordings evenly spaced in name order (every 25th of 3,000): all digits, speakers, takes
mapfile -t NAMES < <(ls "$FSDD/recordings" | grep '\.wav$' | sort | awk -v n="$FILES" -v total="$(ls "$FSDD/recordings" | grep -c '\.wav$')" \
    'BEGIN { step = int(total / n); if (step < 1) step = 1 } (NR - 1) % step == 0 && c < n { print; c++ }')
[ ${#NAMES[@]} -ge 100 ] || say "only ${#NAMES[@]} files (FILES=$FILES)"
say "x86_64 reference: predict on ${#NAMES[@]} files"
(cd "$FSDD/recordings" && "$PYTHON" -m audiomnist_edge predict --json "${NAMES[@]}" 2>/dev/null) > "$WORK/x86_64.jsonl"

# ---- a cached Debian root per suite and architecture ------------------------------------------
root_for() {  # SUITE ARCH -> prints the root's path, building it once
    local suite=$1 arch=$2 root=$CACHE/$1-$2 packages=python3
    [ "$arch" = armhf ] && packages=python3,python3-venv,python3-pip,python3-numpy,python3-cffi
    if [ ! -x "$root/usr/bin/python3" ]; then
        say "building the $suite $arch root in $root (a few minutes, once)"
        mkdir -p "$CACHE"
        rm -rf "$root.tmp"
        # the main archive only: a test root needs no security updates, and one mirror is one
        # thing that can be mid-sync
        mmdebstrap --quiet --variant=minbase --architectures="$arch" --include="$packages" \
            "$suite" "$root.tmp" "deb $MIRROR $suite main" >&2 || die "mmdebstrap $suite $arch failed"
        mv "$root.tmp" "$root"
    fi
    echo "$root"
}

bind() {  # SOURCE TARGET [ro]
    if [ ! -e "$2" ]; then
        if [ -d "$1" ]; then mkdir -p "$2"; else touch "$2"; fi
    fi
    mount --bind "$1" "$2"
    MOUNTS+=("$2")
    [ "${3:-}" = ro ] && mount -o remount,bind,ro "$2"
    return 0
}

inside() {  # ROOT QEMU_CPU PYTHONPATH COMMAND... : run in the root with a clean environment
    local root=$1 cpu=$2 path=$3
    shift 3
    env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
        QEMU_CPU="$cpu" ${path:+PYTHONPATH=$path} chroot "$root" "$@"
}

# ---- one target ---------------------------------------------------------------------------------
check() {
    local target=$1 suite=${1%-*} arch=${1##*-} root cpu machine pyver glibc site="" python
    case $arch in
        arm64) cpu=${ARM64_CPU:-cortex-a72}; machine=aarch64 ;;  # Pi 4 (cortex-a76: Pi 5)
        armhf) cpu=${ARMHF_CPU:-cortex-a7}; machine=armv7l ;;    # Pi 2
        *) die "unknown architecture in $target (arm64 or armhf)" ;;
    esac
    root=$(root_for "$suite" "$arch")
    pyver=$(inside "$root" "$cpu" "" /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    glibc=$(inside "$root" "$cpu" "" /usr/bin/python3 -c 'import platform; print(platform.libc_ver()[1])')
    say "$target: Python $pyver, glibc $glibc, QEMU_CPU=$cpu"
    local platforms=() minor
    for ((minor = 17; minor <= ${glibc#2.}; minor++)); do platforms+=(--platform "manylinux_2_${minor}_$machine"); done
    platforms+=(--platform "linux_$machine")

    local mnt=$root/mnt/check
    mkdir -p "$WORK/$target"
    bind "$WORK/$target" "$mnt"
    bind "$FSDD/recordings" "$root/mnt/fsdd" ro
    bind /proc "$root/proc"
    bind /sys "$root/sys"
    bind "$HERE/cpuinfo-$arch" "$root/proc/cpuinfo" ro
    bind /dev "$root/dev"

    if [ "$arch" = arm64 ]; then
        say "$target: installing the wheel with the host's pip (--platform manylinux_*_$machine)"
        "$PYTHON" -m pip install -q --only-binary=:all: "${platforms[@]}" --python-version "$pyver" \
            --implementation cp --abi "cp${pyver/./}" --abi abi3 --abi none \
            --target "$WORK/$target/site" "$WHEEL" >&2 \
            || die "$target: pip could not install the wheel for $machine"
        python=/usr/bin/python3 site=/mnt/check/site
    else
        say "$target: fetching wheels with the host's pip, installing offline with the root's pip"
        mkdir -p "$WORK/$target/wheels"
        cp "$WHEEL" "$WORK/$target/wheels/"
        # NumPy and cffi come from Debian (python3-numpy, python3-cffi): PyPI has no armv7l wheels
        "$PYTHON" "$HERE/requirements_for.py" "$WHEEL" "$machine" "$pyver" | grep -viE '^(numpy|cffi)\b' |
        while read -r requirement; do
            "$PYTHON" -m pip download -q --no-deps --only-binary=:all: "${platforms[@]}" \
                --python-version "$pyver" --implementation cp --abi "cp${pyver/./}" --abi abi3 --abi none \
                -d "$WORK/$target/wheels" "$requirement" >&2 \
                || say "$target: no $machine wheel for $requirement"
        done
        inside "$root" "$cpu" "" /usr/bin/python3 -m venv --system-site-packages /mnt/check/venv
        inside "$root" "$cpu" "" /mnt/check/venv/bin/pip install -q --no-index --find-links /mnt/check/wheels \
            audiomnist-edge >&2 || die "$target: pip inside the root could not install the wheel"
        python=/mnt/check/venv/bin/python
    fi

    local requirements
    requirements=$("$PYTHON" "$HERE/requirements_for.py" "$WHEEL" "$machine" "$pyver")
    if ! grep -qE '^(ai-edge-litert|tflite-runtime)' <<< "$requirements"; then
        # no interpreter has wheels here: the install succeeds and the first command must say so in one line
        local err
        err=$(inside "$root" "$cpu" "$site" "$python" -m audiomnist_edge predict "/mnt/fsdd/${NAMES[0]}" 2>&1 >/dev/null) && \
            die "$target: predict ran without an interpreter"
        [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ $err == "error: no TFLite interpreter"* ]] \
            || die "$target: expected one 'error: no TFLite interpreter' line, got: $err"
        echo "$target ($machine, Python $pyver): no interpreter has wheels; predict refuses in one line: $err"
        unmount_all
        return
    fi
    say "$target: predict --json on ${#NAMES[@]} files (emulated, slow)"
    local status=0
    inside "$root" "$cpu" "$site" /bin/sh -c 'cd /mnt/fsdd && exec "$0" -m audiomnist_edge predict --json "$@"' \
        "$python" "${NAMES[@]}" > "$WORK/$target/predict.jsonl" 2> "$WORK/$target/predict.err" || status=$?
    local same
    if [ "$status" != 0 ] || ! same=$("$PYTHON" "$HERE/compare_decisions.py" "$WORK/x86_64.jsonl" \
            "$WORK/$target/predict.jsonl"); then
        cat "$WORK/$target/predict.err" >&2
        echo "$same" >&2
        die "$target: predict exited $status or its digits differ from x86_64 (above)"
    fi
    if [ "$(wc -l < "$WORK/$target/predict.err")" != 1 ] || ! grep -q "^${#NAMES[@]} files, 0 failed" "$WORK/$target/predict.err"; then
        cat "$WORK/$target/predict.err" >&2
        die "$target: predict --json wrote more than its summary line to stderr (above)"
    fi
    local backend
    backend=$(inside "$root" "$cpu" "$site" "$python" -m audiomnist_edge info 2>&1 | sed -n "s/^backend  *//p" | head -1)
    say "$target: bench (emulated timings mean nothing; it must run)"
    inside "$root" "$cpu" "$site" "$python" -m audiomnist_edge bench --repeat 20 --warmup 2 --cold 1 --rate 48000 >&2 \
        || die "$target: bench failed"
    echo "$target ($machine, Python $pyver, QEMU_CPU=$cpu): ${same##*$'\n'} (${backend:-backend ?})"
    unmount_all
}

for target in "${TARGETS[@]}"; do
    check "$target"
done
