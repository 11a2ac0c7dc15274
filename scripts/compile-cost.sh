#!/usr/bin/env bash
# Compile cost of `#[workflow]`: builds an N-step chain workflow and the equivalent hand-written
# program (N plain async fns awaited in sequence) in a scratch crate, and reports, per variant,
# the wall time of `cargo build` (dev profile, dependencies already built) and the wall time and
# peak RSS of the final crate's rustc (measured with GNU time through a RUSTC_WRAPPER that only
# wraps that crate).
#
# usage: scripts/compile-cost.sh [N ...]         (default: 50 200 500 1000)
# env:   PROFILE=dev|release (default dev)   KEEP=1 keeps the scratch dir
#        CARGO_FLAGS="--offline" (default) extra flags for every cargo build
#
# The scratch crate depends on this repository's workflow-core by path, reuses its Cargo.lock
# and toolchain file, and builds into its own target dir (nothing in the repository changes).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50 200 500 1000)
profile="${PROFILE:-dev}"
cargo_flags="${CARGO_FLAGS---offline}"

if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing GNU time (apt package \`time\`)" >&2
        apt-get install -y time >/dev/null
    else
        echo "error: /usr/bin/time (GNU time) is missing; install it: sudo apt-get install time" >&2
        exit 1
    fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/wf-compile-cost.XXXXXX")"
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "scratch dir: $work" >&2; fi

crate="$work/chain_cost"
mkdir -p "$crate/src"
cp "$repo/Cargo.lock" "$crate/Cargo.lock"
cp "$repo/rust-toolchain.toml" "$crate/rust-toolchain.toml"
cat >"$crate/Cargo.toml" <<EOF
[package]
name = "chain_cost"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
workflow-core = { path = "$repo/workflow-core" }
tokio = { version = "1", features = ["rt", "macros"] }

[workspace]
EOF

# rustc wrapper: measure only our crate's rustc, pass every other crate through.
cat >"$work/rustc-wrapper.sh" <<'EOF'
#!/bin/sh
rustc="$1"; shift
case " $* " in
    *" --crate-name chain_cost "*) exec /usr/bin/time -f "%e %M" -o "$WF_TIME_OUT" "$rustc" "$@" ;;
esac
exec "$rustc" "$@"
EOF
chmod +x "$work/rustc-wrapper.sh"
export RUSTC_WRAPPER="$work/rustc-wrapper.sh"
export WF_TIME_OUT="$work/rustc-time.txt"
export CARGO_TARGET_DIR="$crate/target"

build_flags=()
[ "$profile" = dev ] || build_flags=(--profile "$profile")

write_workflow() { # N
    { python3 "$repo/scripts/gen-chain.py" "$1" --name Chain
      cat <<EOF

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let out = rt.block_on(Engine::in_memory().run(Chain, 0)).unwrap();
    assert_eq!(out, $1);
}
EOF
    } >"$crate/src/main.rs"
}

write_handwritten() { # N
    { python3 "$repo/scripts/gen-chain.py" "$1" --handwritten
      cat <<EOF

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(chain(0)), $1);
}
EOF
    } >"$crate/src/main.rs"
}

build() { # label -> prints a table row
    local label="$1" start end cargo_s rustc_s rss_kb
    rm -f "$WF_TIME_OUT"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    if ! (cd "$crate" && cargo build $cargo_flags "${build_flags[@]}" -q 2>"$work/build.log"); then
        echo "build of $label failed:" >&2; cat "$work/build.log" >&2; exit 1
    fi
    end=$(date +%s.%N)
    "$crate/target/$([ "$profile" = dev ] && echo debug || echo "$profile")/chain_cost"
    cargo_s=$(echo "$end - $start" | bc)
    read -r rustc_s rss_kb <"$WF_TIME_OUT"
    printf '| %-24s | %10.2f | %10.2f | %12d |\n' "$label" "$cargo_s" "$rustc_s" "$((rss_kb / 1024))"
}

# Warm-up: build the dependencies (and a 1-step chain) once, outside the measurements.
write_workflow 1
(cd "$crate" && cargo build $cargo_flags "${build_flags[@]}" -q)

echo "compile cost, profile=$profile, $(rustc --version), $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "| variant                  | cargo s    | rustc s    | rustc MiB    |"
echo "|--------------------------|------------|------------|--------------|"
for n in "${sizes[@]}"; do
    write_workflow "$n"
    build "workflow chain $n"
    write_handwritten "$n"
    build "hand-written chain $n"
done
