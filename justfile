# schedlab recipes. Each one is a plain cargo command you can also type yourself.
# Install just with `pip install rust-just` (seconds) or `cargo install just`.

# List the recipes.
default:
    @just --list

# The main job: the default suite (quick) into results/quick, with its report.
quick:
    cargo run --release -p experiments -- suite quick --fresh

# Any suite by name or file, with its report (shipped: quick heterogeneity scaling estimates heterogeneous-workers queueing).
suite name *flags:
    cargo run --release -p experiments -- suite {{name}} {{flags}}

# Every shipped suite, each with its report (resumable: rerun to finish an interrupted one).
all:
    #!/usr/bin/env bash
    set -euo pipefail
    for s in quick heterogeneity scaling estimates heterogeneous-workers queueing; do
        cargo run --release -p experiments -- suite "$s" --resume
    done

# Check every shipped suite (expand and validate, run nothing).
dry-run:
    #!/usr/bin/env bash
    set -euo pipefail
    for s in quick heterogeneity scaling estimates heterogeneous-workers queueing; do
        cargo run -q -p experiments -- suite "$s" --dry-run > /dev/null
    done

# A real Slurm run on this machine (root; installs slurm-wlm and munge): quick as a 3-task array, merged, compared with an unsharded run.
slurm-check:
    bash experiments/slurm/check.sh

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

# Two compute calibrations of the same process, and their ratio (release; a wall-clock comparison, so not in the default tests).
calibration:
    cargo test --release -p workloads --test executor -- --ignored --nocapture

# The heavy queueing-theory rows (M/M/c at c = 16 and rho = 0.9, ~110M customers), in release.
sim-theory:
    cargo test --release -p strategies --test sim_theory -- --ignored --nocapture

# The same core tests with the hwloc topology (needs libhwloc-dev and libudev-dev).
test-hwloc:
    cargo test -p scheduler --features hwloc

# Print the detected topology.
topology:
    cargo run --release -p experiments -- topology

# --- Reports -------------------------------------------------------------------------------

# Compare two results directories of the same suite (change per cell with its 95% CI).
compare base new:
    cargo run --release -p experiments -- compare {{base}} {{new}}

# A small sim suite and its report, without running a real suite (target/demo-report).
report-demo:
    cargo run --release -p reports --example demo_report -- target/demo-report

# Open a report in headless Chromium (apt-get installs it if missing): every image loads, no
# console error; writes a full-page screenshot next to index.html. Default: the demo report.
report-check dir="":
    #!/usr/bin/env bash
    set -euo pipefail
    d="{{dir}}"
    if [ -z "$d" ]; then
        cargo run -p reports --example demo_report -- target/demo-report
        d=target/demo-report/report
    fi
    if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    if ! command -v node >/dev/null; then
        echo "report-check: needs node (apt-get install nodejs)" >&2; exit 2
    fi
    node reports/tools/report_check.mjs "$d/index.html" "$d/screenshot.png"

# --- Pool and loader -----------------------------------------------------------------------

# The pool benchmark (2 workers): overhead against rayon, one pool against a fresh one per job, ordered against as-ready delivery.
pool-bench:
    cargo run --release -p strategies --example pool_bench -- --workers 2

# A parallel map on the pool, results in id order.
pool-map:
    cargo run --release -p scheduler --example pool_map

# The loader against PyTorch's scheme: sleeping and spinning samples (flags pass through: just loader-bench --only sleep).
loader-bench *flags:
    cargo run --release -p loader --example loader_bench -- {{flags}}

# Decode, resize and batch a folder of images (default: 300 generated ones) under each strategy (just image-loader FOLDER).
image-loader *flags:
    cargo run --release -p loader --example image_loader -- {{flags}}

# Pipelines against the one-stage loader: (a) decode-bound, (b) read-bound, (c) overhead, (d) default strategy (just pipeline-bench --only a --reps 5).
pipeline-bench *flags:
    cargo run --release -p loader --example pipeline_bench -- {{flags}}

# Autotune against the best static configuration of a sweep, on three workloads (just autotune-bench --reps 3 --out /tmp/autotune).
autotune-bench *flags:
    cargo run --release -p loader --example autotune_bench -- {{flags}}

# The image loader as a pipeline: read (blocking, --read-latency 5ms) -> decode -> resize -> batch -> collate, with its stage statistics.
image-pipeline *flags:
    cargo run --release -p loader --example image_pipeline -- {{flags}}

# --- Reliability ---------------------------------------------------------------------------

# (A separate target dir keeps the --cfg loom build from invalidating the normal one.)
# Plain command: RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p scheduler --release --lib loom_
# (.ci/loom runs that per crate and fails unless every fn loom_* ran).
# Model-check our own synchronisation with loom: Sleep's park/notify, the start Gate, a job's
# back-pressure (Room) and termination (Ending), and the wake-ups of waits inside tasks.
loom:
    bash .ci/loom

# Randomised stress on both engines: SCHEDLAB_STRESS configurations (default 10,000), release.
stress n="10000":
    SCHEDLAB_STRESS={{n}} cargo test --release -p strategies --test stress -- --nocapture

# Fuzz every parser with proptest: SCHEDLAB_FUZZ inputs per parser (default 200,000), release.
fuzz n="200000":
    SCHEDLAB_FUZZ={{n}} cargo test --release -p experiments --test fuzz -- --nocapture

# --- Python --------------------------------------------------------------------------------

# The Python package's tests: a venv in target/python-venv, pip install ./python, pytest.
python-test:
    python3 -m venv target/python-venv
    target/python-venv/bin/pip install -q maturin numpy Pillow pytest
    target/python-venv/bin/pip install -q ./python
    cd python/tests && ../../target/python-venv/bin/python -m pytest -q .

# schedlab.DataLoader/Pipeline against torch's DataLoader (if installed) on (a) sleep, (b) images, (c) pure Python (flags pass through: just python-bench --only a --reps 5).
python-bench *flags:
    target/python-venv/bin/python python/bench/compare.py {{flags}}

# --- What-if -------------------------------------------------------------------------------

# What-if, validated: record a trace of pipeline (a), (b) and the image pipeline, predict six configurations each on the simulator, run them for real (flags pass through: just validate-whatif --only a --reps 5).
validate-whatif *flags:
    cargo run --release -p loader --example whatif_validate -- {{flags}}

# Replay a pipeline trace over a grid (just whatif pipe.csv --batch 32 --workers 1,2,4 --concurrency read=8,16,32).
whatif trace *flags:
    cargo run --release -p experiments -- whatif {{trace}} {{flags}}
