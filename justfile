# schedlab recipes. Each one is a plain cargo command you can also type yourself.
# Install just with `pip install rust-just` (seconds) or `cargo install just`.

# List the recipes.
default:
    @just --list

# Run one strategy on one workload (override: just run 'central(chunk=4)' 'gamma(mean=100us,k=0.5)').
run strategy="work-stealing" workload="lognormal(mean=100us,sigma=1.5)" tasks="20000" workers="2":
    cargo run --release -p experiments -- run --strategy '{{strategy}}' --workload '{{workload}}' --tasks {{tasks}} --workers {{workers}}

# The README's test command.
test:
    cargo test --workspace

# Formatting, lints and tests, as CI runs them.
ci:
    bash .ci/run

# Lints only.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Overhead and balance against rayon, on the same worker count (release build).
bench workers="2":
    cargo run --release -p experiments -- bench --workers {{workers}}

# Simulated events per second: 1,024 workers x 1,000,000 tasks.
sim-bench:
    cargo run --release -p scheduler --example sim_throughput

# Sim against real threads on the same closed workload (P = 2, sleep tasks of 1-3 ms).
validate:
    cargo test --release -p strategies --test sim_vs_threads -- --ignored --nocapture

# The heavy queueing-theory rows (M/M/c at c = 16 and rho = 0.9, ~110M customers), in release.
sim-theory:
    cargo test --release -p strategies --test sim_theory -- --ignored --nocapture

# The same core tests with the hwloc topology (needs libhwloc-dev and libudev-dev).
test-hwloc:
    cargo test -p scheduler --features hwloc

# Print the detected topology.
topology:
    cargo run --release -p experiments -- topology

# (A separate target dir keeps the --cfg loom build from invalidating the normal one.)
# Model-check our own synchronisation (Sleep's park/notify, the start Gate) with loom.
loom:
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p scheduler --release --lib loom

# Randomised stress on both engines: SCHEDLAB_STRESS configurations (default 10,000), release.
stress n="10000":
    SCHEDLAB_STRESS={{n}} cargo test --release -p strategies --test stress -- --nocapture

# Fuzz every parser with proptest: SCHEDLAB_FUZZ inputs per parser (default 200,000), release.
fuzz n="200000":
    SCHEDLAB_FUZZ={{n}} cargo test --release -p experiments --test fuzz -- --nocapture
