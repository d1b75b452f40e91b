"""Train script for clusters: the same code and arguments as `mindface-au train`.

Single device:  python tools/train.py --config configs/affwild2/table3_6_ff.yaml --device Ascend
Data parallel:  msrun --worker_num=8 --local_worker_num=8 --master_port=8118 --log_dir=msrun_log --join=True \
                    tools/train.py --config configs/affwild2/table3_6_ff.yaml --distributed
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mindface_au.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
