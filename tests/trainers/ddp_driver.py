"""Runs `threadweaver train sft` then `threadweaver train rl` in each process of one `accelerate launch`
(one process start for both trainers): `python ddp_driver.py SFT.yaml RL.yaml`.
Used by tests/trainers/test_accelerate_launch.py."""

import sys

from threadweaver.cli import main

if __name__ == "__main__":
    sft, rl = sys.argv[1:3]
    code = main(["train", "sft", "--config", sft]) or main(["train", "rl", "--config", rl])
    raise SystemExit(code)
