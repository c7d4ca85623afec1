#!/bin/sh
# The addition comparison of experiments/addition/README.md: a stacked LSTM and a Grid LSTM of
# about the same number of parameters on sums of two 4-digit numbers, two seeds each, one
# thread, one run after another. Run from the repository's root after `npm ci`:
#   sh experiments/addition/run.sh
# Checkpoints and loss logs go to experiments/addition/runs/<name>/, which git ignores
# (.gitignore): summarize.mjs writes what they show to results.csv, which is kept.
set -e
common="--task addition --digit-length 4 --seq-length 15 --batch-size 50 --max-steps 20000 \
  --eval-val-every 1000 --print-every 1000 --keep last-1 --threads 1"
for seed in 1 2; do
  node dist/cli.js train $common --model lstm --rnn-size 78 --num-layers 2 --seed $seed \
    --checkpoint-dir experiments/addition/runs/lstm-2x78-seed$seed
  node dist/cli.js train $common --model grid_lstm --rnn-size 64 --num-layers 2 --seed $seed \
    --checkpoint-dir experiments/addition/runs/grid-2x64-seed$seed
done
