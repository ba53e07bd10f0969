"""Scores the workspace's poem.txt with this directory's reward model (sys.path[0] is here)."""

import reward_model

with open("poem.txt") as f:
    print("reward:", reward_model.score(f.read()))
