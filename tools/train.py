"""Train script for a checkout: the same code and arguments as `mindface-au train`.

Single device:  python tools/train.py --config affwild2/table3_6_ff --device Ascend
Data parallel:  mindface-au launch --workers 8 -- --config affwild2/table3_6_ff --device Ascend
                (works from an installed package too; see README "Data parallel on clusters")
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mindface_au.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
