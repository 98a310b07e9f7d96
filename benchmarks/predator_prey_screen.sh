#!/usr/bin/env bash
# A screen of LSF-SAC settings on predator-prey (the paper's Fig. 3 setting), every setting at once:
# one `predator_prey.py curve` per setting, each run in its own process (13 in all; written for a
# 16-core machine with one GPU, where 1M steps fit in minutes).
#
#     benchmarks/predator_prey_screen.sh OUT_DIR STEPS DEVICE WALL_SECONDS
#     benchmarks/predator_prey_screen.sh runs/screen 1000000 cuda 500
#
# Every setting starts from the ("predator_prey", "lsfsac") preset (marl_lsf/presets.py) and
# changes what its name says. Each writes OUT_DIR/NAME.log as it goes (the evaluations,
# readable by predator_prey_compare.py), and its .md, .png, .runs.jsonl and saved models under
# OUT_DIR when it finishes; WALL_SECONDS stops what is still running.
set -u
out=$1
steps=$2
device=$3
wall=$4
mkdir -p "$out/models"
preset='"train_freq":1,"batch_size":32,"exploration":"epsilon_greedy","exploration_fraction":1.0,"td_target":"max","message_network":"separate","latent_coef":0.001,"decoder_target":"argmax","last_action_input":true,"tau":1.0,"target_update_interval":200,"td_lambda":0.0,"policy_objective":"forward_kl"'

screen() {
    local name=$1 seeds=$2 change=$3
    local n
    n=$(wc -w <<<"$seeds")
    # shellcheck disable=SC2086  # the seeds are separate words on purpose
    PYTHONUNBUFFERED=1 timeout "$wall" python3 benchmarks/predator_prey.py curve --algos LSFSAC \
        --steps "$steps" --eval-every 50000 --eval-episodes 16 --seeds $seeds --processes "$n" \
        --n-envs 8 --device "$device" --name "$name" --out "$out" --save-models "$out/models" \
        --variants "{$preset$change}" >"$out/$name.log" 2>&1 &
}

screen screen_lsfsac_tes02 "0 1 2" ',"target_entropy_scale":0.2'
screen screen_masac_tes02 "0 1 2" ',"target_entropy_scale":0.2,"latent_dim":0'
screen screen_lsfsac_tes005 "0 1" ',"target_entropy_scale":0.05'
screen screen_lsfsac_actor_lr2e-3 "0 1" ',"actor_learning_rate":0.002'
screen screen_lsfsac_sampled_tes02 "0 1" ',"target_entropy_scale":0.2,"q_messages":"sample"'
screen screen_masac_seed2 "2" ',"latent_dim":0'
wait
