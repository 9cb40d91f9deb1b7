#!/bin/sh
# Behaviour models on MovieLens 100K u1..u5 (explicit ratings): the
# centralized variational trainer without and with the time-aware biases
# (fedrec-train --algo vbmf --time-bias off|on) and the federated default
# (fedrec-sim, every client every round; devices predict each held-out
# rating at its timestamp with their own user-day bias). Prints ONE JSON
# object. Env as bench/centralized.sh and bench/sim.sh (FR_DATA_DIR,
# FR_BUILD_DIR); FR_BEHAVIOUR_FED=0 skips the federated runs (~2.5 min).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
off=$(sh "$root/bench/centralized.sh" --algo vbmf --time-bias off)
on=$(sh "$root/bench/centralized.sh" --algo vbmf --time-bias on)
fed=null
if [ "${FR_BEHAVIOUR_FED:-1}" != 0 ]; then
    fed=$(sh "$root/bench/sim.sh")
fi
printf '{"centralized_vbmf":%s,"centralized_vbmf_time_bias":%s,"federated_default":%s}\n' \
    "$off" "$on" "$fed"
