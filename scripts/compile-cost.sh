#!/usr/bin/env bash
# Compile cost of `#[workflow]`: builds, in a scratch crate, an N-step chain workflow, a static
# fan-out of N declared steps into an all-join (`gen-chain.py N --fanout`) and the hand-written
# chain (N plain async fns awaited in sequence), and reports, per variant, the wall time of
# `cargo build` (dependencies already built) and the wall time and peak RSS ("Maximum resident
# set size") of the final crate's rustc (measured with GNU time through a RUSTC_WRAPPER that
# only wraps that crate).
#
# usage: scripts/compile-cost.sh [N ...]         (default: 50 200 500 1000)
# env:   PROFILE=dev|release (default dev)   KEEP=1 keeps the scratch dir
#        CARGO_FLAGS="--offline" (default) extra flags for every cargo build
#        VARIANTS="chain fanout handwritten" (default: all three) the variants to build
#        BASELINE_REPO=<checkout>  also builds every variant against that checkout's
#            workflow-core (e.g. a `git archive` of an earlier commit), each row beside this
#            repository's, so a change's compile cost is reported beside the one before it
#
# Each scratch crate depends on its repository's workflow-core by path, reuses that
# repository's Cargo.lock and toolchain file, and builds into its own target dir (nothing in
# the repositories changes). The sources come from this repository's scripts/gen-chain.py.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50 200 500 1000)
profile="${PROFILE:-dev}"
cargo_flags="${CARGO_FLAGS---offline}"
read -r -a variants <<<"${VARIANTS:-chain fanout handwritten}"
repos=("$repo")
labels=("this")
if [ -n "${BASELINE_REPO:-}" ]; then
    repos=("$(cd "$BASELINE_REPO" && pwd)" "$repo")
    labels=("baseline" "this")
fi

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

build_flags=()
[ "$profile" = dev ] || build_flags=(--profile "$profile")
out_dir="$([ "$profile" = dev ] && echo debug || echo "$profile")"

make_crate() { # crate-dir repo: a scratch crate depending on repo's workflow-core
    mkdir -p "$1/src"
    cp "$2/Cargo.lock" "$1/Cargo.lock"
    cp "$2/rust-toolchain.toml" "$1/rust-toolchain.toml"
    cat >"$1/Cargo.toml" <<EOF
[package]
name = "chain_cost"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
workflow-core = { path = "$2/workflow-core" }
tokio = { version = "1", features = ["rt", "macros"] }

[workspace]
EOF
}

write_src() { # crate-dir variant(chain|fanout|handwritten) N
    local gen run expect
    case "$2" in
        chain) gen=(--name Wf) run='Engine::in_memory().run(&Wf, 0)).unwrap(' expect="$3" ;;
        fanout) gen=(--fanout --name Wf) run='Engine::in_memory().run(&Wf, 0)).unwrap(' expect="$(($3 * ($3 + 1) / 2))" ;;
        handwritten) gen=(--handwritten) run='chain(0)' expect="$3" ;;
        *) echo "unknown variant \`$2\` (chain, fanout, handwritten)" >&2; exit 1 ;;
    esac
    { python3 "$repo/scripts/gen-chain.py" "$3" "${gen[@]}"
      cat <<EOF

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on($run), $expect);
}
EOF
    } >"$1/src/main.rs"
}

cargo_build() { # crate-dir
    # shellcheck disable=SC2086
    (cd "$1" && CARGO_TARGET_DIR="$1/target" cargo build $cargo_flags "${build_flags[@]}" -q)
}

build() { # crate-dir label repo-label -> prints a table row
    local start end cargo_s rustc_s rss_kb
    rm -f "$WF_TIME_OUT"
    start=$(date +%s.%N)
    if ! cargo_build "$1" 2>"$work/build.log"; then
        echo "build of $2 ($3) failed:" >&2; cat "$work/build.log" >&2; exit 1
    fi
    end=$(date +%s.%N)
    "$1/target/$out_dir/chain_cost"
    cargo_s=$(echo "$end - $start" | bc)
    read -r rustc_s rss_kb <"$WF_TIME_OUT"
    printf '| %-24s | %-8s | %10.2f | %10.2f | %12d |\n' "$2" "$3" "$cargo_s" "$rustc_s" "$((rss_kb / 1024))"
}

# Warm-up: build the dependencies (and a 1-step chain) once per repository, outside the
# measurements.
for k in "${!repos[@]}"; do
    make_crate "$work/${labels[$k]}" "${repos[$k]}"
    write_src "$work/${labels[$k]}" chain 1
    cargo_build "$work/${labels[$k]}"
done

echo "compile cost, profile=$profile, $(rustc --version), $(nproc) cores, $(date -u +%Y-%m-%d)"
for k in "${!repos[@]}"; do echo "${labels[$k]}: ${repos[$k]}"; done
echo "| variant                  | repo     | cargo s    | rustc s    | rustc MiB    |"
echo "|--------------------------|----------|------------|------------|--------------|"
declare -A names=([chain]="workflow chain" [fanout]="workflow fan-out" [handwritten]="hand-written chain")
for n in "${sizes[@]}"; do
    for variant in "${variants[@]}"; do
        for k in "${!repos[@]}"; do
            write_src "$work/${labels[$k]}" "$variant" "$n"
            build "$work/${labels[$k]}" "${names[$variant]:-$variant} $n" "${labels[$k]}"
        done
    done
done
