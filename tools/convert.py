"""Thin script over `mindface-au convert`: python tools/convert.py --src X.pth --arch iresnet100 --out r100.ckpt."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mindface_au.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
