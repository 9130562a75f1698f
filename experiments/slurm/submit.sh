#!/usr/bin/env bash
# Submit a suite as an N-task Slurm array plus a merge job that runs when every shard succeeded.
#   experiments/slurm/submit.sh SUITE N OUT
# Prints the merge job's id. The merged results land in OUT, the shards in OUT.shards/.
set -euo pipefail
SUITE=${1:?suite name or file}
N=${2:?number of shards}
OUT=${3:-results/$SUITE}
SCHEDLAB=${SCHEDLAB:-schedlab}
HERE=$(cd "$(dirname "$0")" && pwd)

array=$(sbatch --parsable --array=1-"$N" "$HERE/suite.sbatch" "$SUITE" "$OUT")
merge=$(sbatch --parsable --job-name=schedlab-merge --dependency=afterok:"$array" \
    --output="slurm-%j-merge.out" \
    --wrap "$(printf '%q ' "$SCHEDLAB" merge) $(for k in $(seq 1 "$N"); do printf '%q ' "$OUT.shards/$k"; done) --out $(printf '%q' "$OUT")")
echo "array job $array, merge job $merge" >&2
echo "$merge"
